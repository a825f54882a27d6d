r"""Two-dimensional DFTs written as matrix products, for exported graphs.

ONNX has a single ``DFT`` operator, and onnxruntime's CPU kernel for it is slow (a naive
:math:`O(n^2)` loop for lengths that are not powers of two, and slower than PocketFFT even
for powers of two) and, for those other lengths, inaccurate: its float32 twiddles give
relative errors near :math:`10^{-5}` at length 260 and :math:`3\cdot10^{-5}` at 1028.
Converse2D transforms the *padded* input, whose size is rarely a power of two.

Here each axis is one dense matrix product with a DFT matrix whose phases are reduced
modulo :math:`n` in integers and evaluated in float64 (so float32 results are as accurate
as PocketFFT's), built in the graph from the size: a fixed-size export folds the matrices
into constants, a dynamic one builds them for the size at hand. Complex spectra use a
"block" layout, the real part stacked above the imaginary part along the row axis, so a
complex product is one real matrix product and no layout shuffles are needed between the
two axes but one transpose:

- :func:`forward_spectrum`: real :math:`(..., H, W)` to :math:`(..., 4H, K)`, the
  :math:`K` first columns (read modulo :math:`W`, so :math:`K > W` tiles the spectrum),
  as ``[re; im; -im; re]`` so that a product with a spectrum needs no shuffling;
- :func:`inverse_real`: :math:`(..., 2H, \lfloor W/2\rfloor + 1)` back to real
  :math:`(..., H, W)`, as ``torch.fft.irfft2`` (the input taken as Hermitian).

A dense product costs :math:`O(n)` multiply-adds per point against the FFT's
:math:`O(\log n)`, so exported models are fastest on moderate tiles.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["forward_spectrum", "inverse_real"]

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _cat(parts: list, axis: int):
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts, axis)
    return torch.cat(parts, axis)


def _phase_table(xp, n, rows, cols, device):
    """cos and sin of 2π·r·c/n for r < rows, c < cols, float64 (rows, cols), with NumPy
    (``xp is np``) or torch ops. r·c is reduced modulo n in integers first, so large
    sizes lose nothing."""
    if xp is np:
        angle = np.outer(np.arange(rows), np.arange(cols)) % n * (2 * math.pi / n)
        return np.cos(angle), np.sin(angle)
    r = torch.arange(rows, device=device)
    c = torch.arange(cols, device=device)
    n = torch.scalar_tensor(n, dtype=torch.int64, device=device)  # the exporter needs a tensor
    angle = torch.outer(r, c).remainder(n).to(torch.float64) * (2 * math.pi) / n.to(torch.float64)
    return angle.cos(), angle.sin()


def _build(kind: str, sizes: tuple, xp, device):
    """The real matrices of the transforms (float64), with NumPy or torch ops."""
    if kind == "columns":  # (W, 2K): real row vector -> [re | im] of its DFT, K columns
        width, count = sizes
        cos, sin = _phase_table(xp, width, width, count, device)
        return _cat([cos, -sin], 1)
    if kind == "forward_rows":  # (4n, 2n): [re; im] -> [re'; im'; -im'; re'] (e^{-iθ})
        (n,) = sizes
        cos, sin = _phase_table(xp, n, n, n, device)
        re_rows, im_rows = _cat([cos, sin], 1), _cat([-sin, cos], 1)
        return _cat([re_rows, im_rows, -im_rows, re_rows], 0)
    if kind == "inverse_rows":  # (2n, 2n): [re; im] -> [re'; im'] (e^{+iθ}, no 1/n)
        (n,) = sizes
        cos, sin = _phase_table(xp, n, n, n, device)
        return _cat([_cat([cos, -sin], 1), _cat([sin, cos], 1)], 0)
    if kind == "synthesis":  # (2K, W): [re | im] half spectrum -> real row, with 1/(H·W)
        width, half, height = sizes
        cos, sin = _phase_table(xp, width, half, width, device)
        # columns 1..width-half stand for two conjugate columns: weight 2, others 1
        if xp is np:
            v = np.arange(half)
            weight = (2.0 - ((v == 0) | (2 * v == width)))[:, None] / float(height * width)
        else:
            v = torch.arange(half, device=device)
            lone = ((v == 0) | (2 * v == width)).to(torch.float64)
            area = torch.scalar_tensor(height * width, dtype=torch.float64, device=device)
            weight = (2.0 - lone)[:, None] / area
        return _cat([cos * weight, -sin * weight], 0)
    raise ValueError(f"unknown matrix kind {kind!r}")


@functools.lru_cache(maxsize=32)
def _numpy_matrix(kind: str, sizes: tuple, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(_build(kind, sizes, np, None), dtype=dtype)


def _matrix(kind: str, sizes: tuple, dtype: torch.dtype, device) -> Tensor:
    """A transform matrix in ``dtype``. With sizes known in advance (ints, not symbols) it
    is computed with NumPy and cached, so an exporter stores it as a constant of the
    graph; with symbolic sizes (a dynamic-shape export) it is computed in the graph."""
    if all(isinstance(v, int) for v in sizes):
        array = _numpy_matrix(kind, sizes, _NUMPY_DTYPES[dtype])
        return torch.from_numpy(array).to(device)
    return _build(kind, sizes, torch, device).to(dtype)


def forward_spectrum(x: Tensor, count) -> Tensor:
    """2-D DFT of a real input, columns ``0..count-1`` (read modulo the width), in the
    block layout with a rotated copy: ``[re; im; -im; re]``.

    ``count = W // 2 + 1`` gives ``torch.fft.rfft2``; a larger count gives the columns of
    the spectrum tiled along the width (the spectrum of a zero-upsampled signal). The
    product with a spectrum ``g_re + i·g_im`` is ``g_re * out[:2H] + g_im * out[2H:]``.

    Shape:
        - x: :math:`(..., H, W)` real.
        - output: :math:`(..., 4H, \\text{count})`.
    """
    h, w = x.shape[-2:]
    z = x @ _matrix("columns", (w, count), x.dtype, x.device)  # (..., H, 2·count): [re | im]
    z = z.unflatten(-1, (2, count)).transpose(-3, -2).flatten(-3, -2)  # (..., 2H, count)
    return _matrix("forward_rows", (h,), x.dtype, x.device) @ z


def inverse_real(x: Tensor, width) -> Tensor:
    """Inverse 2-D DFT of a half spectrum in the block layout ``[re; im]``.

    Equals ``torch.fft.irfft2(torch.complex(re, im), s=(H, width))``: the imaginary parts
    of the columns without a twin (0 and, for an even width, width/2) are ignored.

    Shape:
        - x: :math:`(..., 2H, \\lfloor \\text{width}/2\\rfloor + 1)` in the block layout.
        - output: :math:`(..., H, \\text{width})` real.
    """
    h, half = x.shape[-2] // 2, x.shape[-1]
    z = _matrix("inverse_rows", (h,), x.dtype, x.device) @ x  # inverse over the rows
    z = z.unflatten(-2, (2, h)).transpose(-3, -2).flatten(-2, -1)  # (..., H, 2·half)
    return z @ _matrix("synthesis", (width, half, h), x.dtype, x.device)
