"""The paper's test-time degradations, reproducing the reference scripts bit for bit.

- :func:`add_gaussian_noise` — ``np.random.seed(seed)`` then
  ``img + np.random.normal(0, sigma/255, img.shape)`` (float64 draw, float32 result,
  no clipping), on a float image in ``[0, 1]``;
- :func:`blur` — ``scipy.ndimage.convolve`` of the *uint8* HR image with the kernel
  (``mode='wrap'``); the result keeps the input dtype, so for uint8 every value is
  **truncated** toward zero (not rounded) — the reference behaviour, reproduced on
  purpose;
- :func:`modcrop` — crop the bottom/right so that H and W are multiples of a number.

Noise levels ``sigma`` are on the 0–255 scale, as in the paper (σ = 25, 2.55).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from torch import Tensor

from ..checks import check_int, check_real

__all__ = ["add_gaussian_noise", "blur", "check_kernel", "modcrop"]


def check_kernel(kernel: np.ndarray, name: str = "kernel") -> np.ndarray:
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {kernel.shape}")
    if not np.issubdtype(kernel.dtype, np.number) or kernel.dtype == np.bool_:
        raise TypeError(f"{name} must be numeric, got dtype {kernel.dtype}")
    if not np.all(np.isfinite(kernel)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return kernel


# ---------------------------------------------------------------------------------------
# the paper's test-time degradations
# ---------------------------------------------------------------------------------------
def add_gaussian_noise(img: np.ndarray, sigma: float, seed: int | None = 0) -> np.ndarray:
    """Additive white Gaussian noise exactly as the paper's test scripts add it.

    Equivalent to ``np.random.seed(seed); img + np.random.normal(0, sigma / 255, img.shape)``
    (the same legacy Mersenne-Twister stream), computed in float64 and returned as
    float32, without clipping. The draw uses a private ``np.random.RandomState(seed)``,
    so numpy's global random state is left untouched. ``seed=None`` draws fresh entropy.

    Args:
        img: float image in ``[0, 1]`` (integer images are refused: divide by 255 first).
        sigma: noise standard deviation on the 0-255 scale (25 for the denoising table,
            2.55 for deblurring).
        seed: seed of the legacy generator (0 in the reference scripts).

    Shape:
        - img: any shape, e.g. :math:`(H, W)` or :math:`(H, W, C)`; output: same, float32.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f"img must be a numpy array, got {type(img).__name__}")
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"img must be a float image in [0, 1], got dtype {img.dtype}")
    check_real("sigma", sigma, minimum=0)
    state = np.random.RandomState(seed)
    noise = state.normal(0.0, float(sigma) / 255.0, img.shape)
    return (img.astype(np.float64) + noise).astype(np.float32)


def blur(img: np.ndarray, kernel: np.ndarray, mode: str = "wrap") -> np.ndarray:
    """Blur an image as the reference scripts do: ``scipy.ndimage.convolve`` per channel.

    This is ``ndimage.convolve(img, kernel[..., None], mode=mode)`` for ``H×W×C`` input
    and ``ndimage.convolve(img, kernel, mode=mode)`` for ``H×W``. The output has the dtype
    of the input: the reference code blurs the **uint8** HR image, so each blurred value
    is truncated toward zero (e.g. 101.9 → 101) rather than rounded, and a flat region can
    lose one gray level to floating-point error. This is kept on purpose so the published
    numbers are reproduced; pass a float image to get the unquantised blur.

    Args:
        img: ``H×W`` or ``H×W×C`` image, normally uint8.
        kernel: 2-D blur kernel (true convolution, i.e. the kernel is flipped).
        mode: boundary handling of ``scipy.ndimage`` (``"wrap"`` = circular).

    Shape:
        - img: :math:`(H, W)` or :math:`(H, W, C)`; output: same shape and dtype.
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f"img must be a numpy array, got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise ValueError(f"img must be HxW or HxWxC, got shape {img.shape}")
    kernel = check_kernel(kernel)
    weights = kernel[..., None] if img.ndim == 3 else kernel
    return ndimage.convolve(img, weights, mode=mode)


def modcrop(img, multiple: int):
    """Crop the bottom and right edges so that H and W are multiples of ``multiple``.

    Works on numpy ``H×W`` / ``H×W×C`` arrays (returns a copy) and on tensors
    ``(..., H, W)`` (returns a view).
    """
    if check_int("multiple", multiple) < 1:
        raise ValueError(f"multiple must be a positive int, got {multiple!r}")
    if isinstance(img, Tensor):
        if img.dim() < 2:
            raise ValueError(f"expected a (..., H, W) tensor, got shape {tuple(img.shape)}")
        h, w = img.shape[-2:]
        return img[..., : h - h % multiple, : w - w % multiple]
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"img must be HxW or HxWxC, got shape {img.shape}")
        h, w = img.shape[:2]
        return img[: h - h % multiple, : w - w % multiple].copy()
    raise TypeError(f"img must be a numpy array or a tensor, got {type(img).__name__}")
