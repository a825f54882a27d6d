"""Loading blur kernels from files (.npy, images, MATLAB .mat) and the paper's five kernels.

Every loader returns a 2-D float64 array normalised to sum 1 (``k / k.sum()``, which
leaves a kernel that already sums to exactly 1 — such as the paper's ``kernel_*.npy``
— bit-for-bit unchanged, and matches the reference code's ``k /= np.sum(k)`` for the
USRNet ``.mat`` kernels). Problems are reported as ``ValueError`` naming the file.

A blur kernel (a point-spread function) spreads light and never removes it, so negative
taps are refused (:func:`validate_kernel`), with the way to clip them if they are
measurement noise: deblurring with a kernel that is not a blur (a sharpening or
difference filter) inverts something the camera never did, and the learned non-blind
models never saw one. Values within ``NEGATIVE_TOLERANCE`` of the largest tap below zero
(rounding) count as zero.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "KERNEL_SUFFIXES",
    "NEGATIVE_TOLERANCE",
    "PAPER_KERNEL_COUNT",
    "load_kernel",
    "paper_kernels",
    "validate_kernel",
]

IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")
KERNEL_SUFFIXES = (".npy", ".mat", *IMAGE_SUFFIXES)
PAPER_KERNEL_COUNT = 5
#: Negative taps down to this fraction of the largest tap are rounding, set to zero.
NEGATIVE_TOLERANCE = 1e-6


def validate_kernel(kernel: np.ndarray, source: str = "the blur kernel") -> np.ndarray:
    """Check a candidate blur kernel and return it as float64 normalised to sum 1.

    ``ValueError`` (starting with ``source``) for a kernel that is not numeric and real,
    not 2-D, empty, not finite, without a positive sum, or with negative taps.
    """
    kernel = np.asarray(kernel)
    if kernel.dtype == object or not (
        np.issubdtype(kernel.dtype, np.number) and kernel.dtype != np.bool_
    ):
        raise ValueError(f"{source}: the kernel must be numeric, got dtype {kernel.dtype}")
    if np.iscomplexobj(kernel):
        raise ValueError(f"{source}: the kernel must be real, got dtype {kernel.dtype}")
    if kernel.ndim != 2:
        raise ValueError(f"{source}: the kernel must be 2-D, got shape {kernel.shape}")
    if kernel.size == 0:
        raise ValueError(f"{source}: the kernel is empty (shape {kernel.shape})")
    kernel = kernel.astype(np.float64)
    if not np.all(np.isfinite(kernel)):
        raise ValueError(f"{source}: the kernel contains NaN or infinite values")
    total = np.sum(kernel)
    if not total > 0:
        raise ValueError(
            f"{source}: the kernel sums to {total:g}; a blur kernel must have a positive sum"
        )
    negative = kernel < -NEGATIVE_TOLERANCE * np.abs(kernel).max()
    if negative.any():
        raise ValueError(
            f"{source}: the kernel has {int(negative.sum())} negative tap(s), down to "
            f"{kernel.min() / total:.3g} of its sum; a blur kernel is non-negative. If they "
            "are measurement noise, clip them first (numpy.clip(kernel, 0, None))"
        )
    return np.clip(kernel, 0, None) / total


_NPY_MAGIC = b"\x93NUMPY"


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if head != _NPY_MAGIC:
        looks = "text" if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "data"
        raise ValueError(
            f"{path}: cannot read as a .npy array: it holds {looks} without the .npy header, "
            "not a NumPy file; save the kernel with numpy.save, or use a .png/.mat kernel"
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickled" in str(exc):  # an object array: numpy's hint is to allow pickles, never
            raise ValueError(
                f"{path}: cannot read as a .npy array: it holds Python objects, not numbers"
            ) from None
        raise ValueError(f"{path}: cannot read as a .npy array ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: cannot read as a .npy array ({exc})") from exc


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("1", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("L")
            return np.array(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: cannot read as an image ({exc})") from exc


def _read_mat(path: Path, index: int | None, variable: str | None) -> tuple[np.ndarray, str]:
    from scipy.io import loadmat

    try:
        contents = loadmat(path)
    except NotImplementedError as exc:  # MATLAB v7.3 files are HDF5
        raise ValueError(
            f"{path}: MATLAB v7.3 (HDF5) files are not supported; re-save with "
            f"save(..., '-v7') ({exc})"
        ) from exc
    except Exception as exc:  # scipy raises ValueError, TypeError, OSError, ...
        raise ValueError(f"{path}: cannot read as a MATLAB .mat file ({exc})") from exc
    names = sorted(k for k in contents if not k.startswith("__"))
    if not names:
        raise ValueError(f"{path}: the .mat file is empty (it holds no variables)")
    if variable is not None:
        if variable not in contents or variable.startswith("__"):
            raise ValueError(f"{path}: no variable {variable!r}; variables are {names}")
        name = variable
    elif len(names) == 1:
        name = names[0]
    elif "kernels" in names:
        name = "kernels"
    else:
        raise ValueError(
            f"{path}: holds several variables {names}; choose one with variable=... "
            "(--kernel-var NAME on the command line)"
        )
    value = contents[name]
    source = f"{path} (variable {name!r})"
    if value.size == 0:
        raise ValueError(f"{source}: is empty")
    if value.dtype == object:  # a MATLAB cell array of kernels, e.g. USRNet's 1x12 'kernels'
        cells = value.reshape(-1, order="F")
        if index is None:
            if cells.size != 1:
                raise ValueError(
                    f"{source}: is a cell array of {cells.size} kernels; pass index=0.."
                    f"{cells.size - 1} (--kernel-index N on the command line)"
                )
            index = 0
        _check_index(index, cells.size, source)
        return np.asarray(cells[index]), f"{source}[{index}]"
    if value.ndim == 3:  # kernels stacked as k x k x N (MATLAB's kernels(:, :, i))
        if index is None:
            raise ValueError(
                f"{source}: holds {value.shape[2]} stacked kernels of shape "
                f"{value.shape[:2]}; pass index=0..{value.shape[2] - 1} "
                "(--kernel-index N on the command line)"
            )
        _check_index(index, value.shape[2], source)
        return value[:, :, index], f"{source}[{index}]"
    if index not in (None, 0):
        raise ValueError(f"{source}: holds a single kernel, got index={index}")
    return value, source


def _check_index(index, count: int, source: str) -> None:
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"index must be an int, got {type(index).__name__} {index!r}")
    if not 0 <= index < count:
        raise ValueError(f"{source}: index {index} is out of range 0..{count - 1}")


def load_kernel(
    path: str | os.PathLike, index: int | None = None, variable: str | None = None
) -> np.ndarray:
    """Load a blur kernel as a 2-D float64 array summing to 1.

    Supported files:

    - ``.npy``: a 2-D numeric array;
    - ``.png`` / ``.bmp`` / ``.tif`` / ``.tiff``: a gray (or colour, converted to gray)
      image of the kernel, normalised by the sum of its pixel values;
    - ``.mat`` (MATLAB up to v7): the single variable of the file, the one named by
      ``variable``, or ``kernels``; a 2-D array is the kernel, a cell array (USRNet's
      ``kernels_12.mat`` holds a 1×12 cell) or a ``k×k×N`` stack is indexed by ``index``
      (0-based, column-major order for cells).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unknown suffix, unreadable file, not 2-D, empty, NaN/inf values,
            or a sum that is not positive — the message names the file and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"kernel file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw, source = _read_npy(path), str(path)
    elif suffix in IMAGE_SUFFIXES:
        raw, source = _read_image(path), str(path)
    elif suffix == ".mat":
        raw, source = _read_mat(path, index, variable)
    else:
        raise ValueError(
            f"{path}: unsupported kernel file type {suffix or '(none)'!r}; "
            f"expected one of {KERNEL_SUFFIXES}"
        )
    if suffix != ".mat" and index not in (None, 0):
        raise ValueError(f"{path}: holds a single kernel, got index={index}")
    return validate_kernel(raw, source)


def paper_kernels(directory: str | os.PathLike) -> list[np.ndarray]:
    """The five 7×7 blur kernels of the paper's deblurring table, ``kernel_1`` … ``kernel_5``.

    ``directory`` is the folder holding ``kernel_1.npy`` … ``kernel_5.npy``, or a folder
    with a ``kernels`` sub-folder holding them (e.g. the ``shared`` data folder).

    Returns:
        A list of five float64 7×7 arrays, each summing to 1.
    """
    directory = Path(directory)
    for candidate in (directory, directory / "kernels"):
        if (candidate / "kernel_1.npy").is_file():
            directory = candidate
            break
    else:
        raise FileNotFoundError(
            f"no kernel_1.npy in {directory} or {directory / 'kernels'}: expected the "
            f"paper's kernel_1.npy ... kernel_{PAPER_KERNEL_COUNT}.npy"
        )
    return [load_kernel(directory / f"kernel_{i}.npy") for i in range(1, PAPER_KERNEL_COUNT + 1)]
