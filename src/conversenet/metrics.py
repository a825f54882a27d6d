"""Image-quality metrics with the conventions of the paper's evaluation code.

The paper reports PSNR and SSIM computed the way the KAIR test scripts compute them:

- images are numpy arrays on the ``[0, 255]`` scale (uint8 after rounding the restored
  output, or float), of shape ``H×W`` or ``H×W×C``, in RGB channel order;
- ``border`` pixels are shaved from every side before scoring (``border = scale`` for
  super-resolution, 0 for denoising);
- PSNR uses a peak of 255 and the mean squared error over all pixels and channels,
  computed in float64; identical images give ``inf``;
- SSIM is Wang et al.'s index with an 11×11 Gaussian window (σ = 1.5), the *valid*
  part of the filtered maps only (no padding), ``C1 = (0.01·255)²`` and
  ``C2 = (0.03·255)²``; a colour image scores the mean of its per-channel SSIMs;
- the luminance channel is ITU-R BT.601 ``Y = (65.481 R + 128.553 G + 24.966 B)/255 + 16``
  (MATLAB's ``rgb2ycbcr``), rounded for uint8 input.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from .checks import check_int

__all__ = ["psnr", "rgb2ycbcr", "ssim", "ssim_window"]

SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
PEAK = 255.0

# BT.601 (MATLAB rgb2ycbcr) for RGB values on [0, 255]: [Y, Cb, Cr] = rgb @ M / 255 + offset
_YCBCR_MATRIX = np.array(
    [
        [65.481, -37.797, 112.0],
        [128.553, -74.203, -93.786],
        [24.966, 112.0, -18.214],
    ]
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])


# ---------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------
def _check_pair(img1, img2, border) -> None:
    for name, img in (("img1", img1), ("img2", img2)):
        if not isinstance(img, np.ndarray):
            raise TypeError(
                f"{name} must be a numpy array on the [0, 255] scale, got {type(img).__name__}"
            )
        if img.ndim not in (2, 3):
            raise ValueError(f"{name} must have shape HxW or HxWxC, got shape {img.shape}")
        if img.dtype == np.bool_ or not np.issubdtype(img.dtype, np.number):
            raise TypeError(f"{name} must be a numeric array, got dtype {img.dtype}")
    if img1.shape != img2.shape:
        raise ValueError(f"images must have the same shape, got {img1.shape} and {img2.shape}")
    check_int("border", border, minimum=0)
    h, w = img1.shape[:2]
    if 2 * border >= min(h, w):
        raise ValueError(f"border {border} leaves no pixel of a {h}x{w} image")


def _shave(img: np.ndarray, border: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[border : h - border, border : w - border]


# ---------------------------------------------------------------------------------------
# PSNR
# ---------------------------------------------------------------------------------------
def psnr(img1: np.ndarray, img2: np.ndarray, border: int = 0) -> float:
    """Peak signal-to-noise ratio in dB of two images on the ``[0, 255]`` scale.

    ``20·log10(255 / sqrt(MSE))`` with the MSE over all pixels and channels left after
    shaving ``border`` pixels from every side, computed in float64. Returns ``inf`` for
    identical images.

    Shape:
        - img1, img2: :math:`(H, W)` or :math:`(H, W, C)`, same shape, uint8 or float.

    Example:
        >>> a = np.zeros((8, 8), np.uint8)
        >>> round(psnr(a, a + 1), 2)
        48.13
    """
    _check_pair(img1, img2, border)
    a = _shave(img1, border).astype(np.float64)
    b = _shave(img2, border).astype(np.float64)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return 20.0 * math.log10(PEAK / math.sqrt(mse))


def ssim_window(size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian ``exp(-(i - (size-1)/2)² / (2σ²))`` of the SSIM window.

    The 2-D window is its outer product (this equals OpenCV's ``getGaussianKernel``).

    Shape:
        - Output: :math:`(size,)`, float64, sums to 1.
    """
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable Gaussian filtering of a 2-D float64 array, keeping the valid part only."""
    r = (g.size - 1) // 2
    out = ndimage.correlate1d(img, g, axis=0, mode="constant")
    out = ndimage.correlate1d(out, g, axis=1, mode="constant")
    return out[r:-r, r:-r]


def _ssim_2d(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> float:
    c1 = (SSIM_K1 * PEAK) ** 2
    c2 = (SSIM_K2 * PEAK) ** 2
    mu1 = _filter_valid(a, g)
    mu2 = _filter_valid(b, g)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter_valid(a * a, g) - mu1_sq
    sigma2_sq = _filter_valid(b * b, g) - mu2_sq
    sigma12 = _filter_valid(a * b, g) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return float(ssim_map.mean())


def ssim(img1: np.ndarray, img2: np.ndarray, border: int = 0) -> float:
    """Structural similarity of two images on the ``[0, 255]`` scale (KAIR/MATLAB convention).

    After shaving ``border`` pixels, local means, variances and covariance are taken with
    an 11×11 Gaussian window (σ = 1.5, see :func:`ssim_window`) over the *valid* region
    only (the output map is 10 pixels smaller in each dimension), with
    ``C1 = (0.01·255)²``, ``C2 = (0.03·255)²`` and population (biased) moments, all in
    float64. The score is the mean of the SSIM map; for ``H×W×C`` input it is the mean
    of the per-channel scores (a single channel counts as a gray image).

    Shape:
        - img1, img2: :math:`(H, W)` or :math:`(H, W, C)`, same shape, with at least 11
          rows and columns left after shaving.
    """
    _check_pair(img1, img2, border)
    a = _shave(img1, border).astype(np.float64)
    b = _shave(img2, border).astype(np.float64)
    if min(a.shape[:2]) < SSIM_WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs at least {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE} pixels after shaving "
            f"the border, got {a.shape[0]}x{a.shape[1]}"
        )
    g = ssim_window()
    if a.ndim == 2:
        return _ssim_2d(a, b, g)
    return float(np.mean([_ssim_2d(a[..., c], b[..., c], g) for c in range(a.shape[2])]))


# ---------------------------------------------------------------------------------------
# colour conversion
# ---------------------------------------------------------------------------------------
def rgb2ycbcr(img: np.ndarray, only_y: bool = True) -> np.ndarray:
    """BT.601 RGB → YCbCr as MATLAB's ``rgb2ycbcr`` (the Y channel used for SR scores).

    ``Y = (65.481 R + 128.553 G + 24.966 B) / 255 + 16`` with R, G, B on ``[0, 255]``
    (Cb and Cr likewise with offsets 128). For uint8 input the result is rounded
    (numpy's round-half-to-even, as the reference code) and returned as uint8 in
    ``[16, 235]`` (Y) / ``[16, 240]`` (Cb, Cr). For float input the image is read on
    ``[0, 1]`` and the result is divided by 255 and returned in the input dtype, without
    rounding. The input is never modified.

    Shape:
        - Input: :math:`(H, W, 3)` in RGB order.
        - Output: :math:`(H, W)` when ``only_y`` else :math:`(H, W, 3)` (Y, Cb, Cr).
    """
    if not isinstance(img, np.ndarray):
        raise TypeError(f"img must be a numpy array, got {type(img).__name__}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"img must have shape HxWx3 (RGB), got {img.shape}")
    if img.dtype == np.uint8:
        rgb = img.astype(np.float64)
    elif np.issubdtype(img.dtype, np.floating):
        rgb = img.astype(np.float64) * 255.0
    else:
        raise TypeError(f"img must be uint8 on [0, 255] or float on [0, 1], got {img.dtype}")
    if only_y:
        out = rgb @ _YCBCR_MATRIX[:, 0] / 255.0 + _YCBCR_OFFSET[0]
    else:
        out = rgb @ _YCBCR_MATRIX / 255.0 + _YCBCR_OFFSET
    if img.dtype == np.uint8:
        return np.round(out).astype(np.uint8)
    return (out / 255.0).astype(img.dtype)
