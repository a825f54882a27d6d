"""Sample data that ships with the package: a photo and a blur kernel for demos and docs."""

from __future__ import annotations

from importlib import resources

import numpy as np

from .io import load_image

__all__ = ["demo_kernel", "sample_image"]


def sample_image() -> np.ndarray:
    """The 192×192 RGB sample photo shipped with the package (CC0; see assets/SOURCE.md).

    Example:
        >>> sample_image().shape
        (192, 192, 3)
    """
    with resources.as_file(resources.files("conversenet") / "assets" / "chelsea.png") as path:
        return load_image(path)


def demo_kernel(size: int = 7, sigma_major: float = 1.6, sigma_minor: float = 0.7) -> np.ndarray:
    """A diagonal anisotropic Gaussian blur kernel (``size × size``, sum 1).

    The major axis runs from top-left to bottom-right, like the paper's ``kernel_1``.
    """
    r = (size - 1) / 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    u, v = (x + y) / np.sqrt(2), (x - y) / np.sqrt(2)
    k = np.exp(-0.5 * ((u / sigma_major) ** 2 + (v / sigma_minor) ** 2))
    return k / k.sum()
