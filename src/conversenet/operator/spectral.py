r"""The spectral filter of the reverse convolution, in 1, 2 and 3 dimensions, and its
application to a padded input.

On the padded input :math:`y` (sizes :math:`n_1, \dots, n_d`), scale :math:`s` and
:math:`\hat K` the kernel's OTF at the output size :math:`s n_1\times\dots\times s n_d`,
the solution of :func:`~conversenet.operator.solver.reverse_conv` is
:math:`\hat X = \operatorname{tile}_s(\hat y)\,G` with, for the paper's :math:`X_0` (the
nearest upsampling, :math:`\hat B` the spectrum of the :math:`s^d` box)

.. math::

    G = \operatorname{conj}(\hat K)\,\operatorname{tile}_s\!\left[
        \frac{1 - \overline{\hat K \hat B}}{\overline{|\hat K|^2} + \lambda}\right] + \hat B,

and for :math:`X_0 = 0` :math:`G_0 = \operatorname{conj}(\hat K)\operatorname{tile}_s[1 /
(\overline{|\hat K|^2} + \lambda)]`, where :math:`\overline{(\cdot)}` is the mean over the
:math:`s^d` aliased blocks of a spectrum. For :math:`s = 1`,
:math:`G = (\operatorname{conj}(\hat K) + \lambda) / (|\hat K|^2 + \lambda)`.

:func:`spectral_filter` builds :math:`G` without any FFT of a padded kernel, in every
dimension: :math:`\hat K` is the DFT of a :math:`k_1\times\dots\times k_d` array, one small
matrix product per axis (:func:`small_dft`), and the two block means are the spectra of
small decimated arrays, the kernel's autocorrelation and the kernel smeared by the box,
sampled every :math:`s` taps (:func:`decimated_spectra`): everything but the final product
with :math:`\hat K` happens at the input resolution. :func:`apply_spectral_filter` is one
FFT of the input, the product with the filter and one inverse real FFT (the
:mod:`~conversenet.operator.fft` engine decides which library runs them).

:func:`padded_otf` and :func:`block_mean` are the textbook pieces (the padded kernel, whose
FFT is :math:`\hat K`, and the block mean of a full spectrum), used by the reference
algorithms and by the discrepancy principle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from . import dft
from .checks import check_fits, tracks_grad
from .fft import autocast_off, engine_for, is_export_friendly, scratch

__all__ = ["apply_spectral_filter", "reverse_conv_filter", "spectral_filter"]

CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


# ---------------------------------------------------------------------------------------
# small DFTs
# ---------------------------------------------------------------------------------------
def twiddles(n, count: int, length: int, offset: int, dtype, device) -> tuple[Tensor, Tensor]:
    """cos and sin of 2π·u·(i + offset)/n for u < count, i < length, as (count, length).

    The phase is reduced modulo n in integers first, so large sizes lose no accuracy.
    """
    u = torch.arange(count, device=device)
    i = torch.arange(offset, offset + length, device=device)
    if not isinstance(n, int):  # a symbolic size (dynamic-shape export): use tensor operands
        n_t = torch.scalar_tensor(n, dtype=torch.int64, device=device)
        angle = torch.outer(u, i).remainder(n_t).to(torch.float64)
        angle = angle * (2 * math.pi) / n_t.to(torch.float64)
        return angle.cos().to(dtype), angle.sin().to(dtype)
    angle = torch.outer(u, i).remainder_(n).to(torch.float64).mul_(2 * math.pi / n)
    return angle.cos().to(dtype), angle.sin().to(dtype)


def small_dft(
    a: Tensor, offsets: Sequence[int], sizes: Sequence, onesided: bool
) -> tuple[Tensor, Tensor]:
    r"""DFT on a grid of ``sizes`` of a small array placed with its [0, ..., 0] at ``offsets``.

    Returns the real and imaginary parts of
    :math:`\sum_i a_i e^{-2\pi\mathrm{i}\sum_j u_j(i_j + o_j)/N_j}` on the whole grid
    (``onesided``: :math:`u_d \le N_d/2` on the last axis). Elements that land on the same
    grid point (a larger than the grid) add up, as for a circular layout. One small matrix
    product per axis instead of an FFT of the zero-padded grid: no large temporary, and a
    cheap backward.

    Shape:
        - a: :math:`(..., k_1, ..., k_d)` real; outputs: :math:`(..., N_1, ..., N'_d)`.
    """
    ndim = len(sizes)
    cols = sizes[-1] // 2 + 1 if onesided else sizes[-1]
    cos, sin = twiddles(sizes[-1], cols, a.shape[-1], offsets[-1], a.dtype, a.device)
    if ndim == 1:
        return a @ cos.T, a @ sin.neg().T
    # (C - iS) along each axis, from the last one outwards; the pair (re, im) of the value
    # re - i·im is stacked along the axis being transformed, so that each step is one
    # product per output part and makes no full-size temporary
    parts = (a @ cos.T, a @ sin.T)
    for axis in range(ndim - 2, -1, -1):
        size = sizes[axis]
        cos, sin = twiddles(size, size, a.shape[axis - ndim], offsets[axis], a.dtype, a.device)
        trailing = parts[0].shape[axis - ndim + 1 :]
        stacked = torch.cat([p.flatten(axis - ndim + 1) for p in parts], dim=-2)
        real = torch.cat([cos, -sin], dim=1) @ stacked
        if axis == 0:  # the last step returns re + i·imag
            parts = (real, torch.cat([-sin, -cos], dim=1) @ stacked)
        else:
            parts = (real, torch.cat([sin, cos], dim=1) @ stacked)
        if len(trailing) > 1:
            parts = tuple(p.unflatten(-1, trailing) for p in parts)
    return parts


def _decimated_dft(t: Tensor, origins: Sequence[int], scale: int, sizes, batch) -> tuple:
    """The small DFT of ``t`` sampled every ``scale`` taps from its grid origin ``origins``."""
    starts = [origin % scale for origin in origins]
    t = t[(..., *(slice(start, None, scale) for start in starts))]
    t = t.reshape(*batch, *t.shape[2:])
    offsets = [(start - origin) // scale for start, origin in zip(starts, origins, strict=True)]
    return small_dft(t, offsets, sizes, onesided=False)


def decimated_spectra(weight: Tensor, scale: int, sizes: Sequence) -> tuple:
    r"""Block means of :math:`|\hat K|^2` and :math:`\hat K\hat B` at the input resolution.

    The mean of the :math:`s^d` aliased blocks of a spectrum is the spectrum of the
    :math:`s`-fold decimated signal, so both come from small spatial arrays: the kernel's
    autocorrelation (for the power) and the kernel convolved with the :math:`s^d` box (for
    the cross term), each sampled every :math:`s` taps.

    Returns:
        power: real, :math:`(B, C, n_1, ..., n_d)`; cross (real part, imaginary part), each
        :math:`(B, C, n_1, ..., n_d)`.
    """
    b, c, *ks = weight.shape
    conv = CONVS[len(ks)]
    flat = weight.reshape(1, b * c, *ks)
    filters = weight.reshape(b * c, 1, *ks)
    # autocorrelation: lag d sits at index d + k - 1
    pads = [p for k in reversed(ks) for p in (k - 1, k - 1)]
    auto = conv(F.pad(flat, pads), filters, groups=b * c)
    power = _decimated_dft(auto, [k - 1 for k in ks], scale, sizes, (b, c))[0]
    # kernel ⊛ box: tap r of the result sits at position r - k//2 of the output grid
    box = flat.new_ones(b * c, 1, *(scale,) * len(ks))
    smeared = conv(F.pad(flat, (scale - 1,) * (2 * len(ks))), box, groups=b * c)
    cross = _decimated_dft(smeared, [k // 2 for k in ks], scale, sizes, (b, c))
    return power, cross


def box_spectrum(scale: int, sizes: Sequence, dtype, device, parts: bool) -> tuple:
    """(real, imaginary) parts of the half spectrum (the last axis one-sided) of the
    :math:`s^d` box at the origin on a grid of ``sizes``; from twiddles with ``parts``
    (no complex tensor), else from FFTs of the box along each axis."""
    factors = []
    for axis, size in enumerate(sizes):
        last = axis == len(sizes) - 1
        shape = [-1 if i == axis else 1 for i in range(len(sizes))]
        if parts:
            cos, sin = twiddles(size, size // 2 + 1 if last else size, scale, 0, dtype, device)
            factors.append((cos.sum(-1).view(shape), -sin.sum(-1).view(shape)))
            continue
        box = torch.zeros(size, dtype=dtype, device=device)
        box[:scale] = 1
        factors.append((torch.fft.rfft if last else torch.fft.fft)(box).view(shape))
    if not parts:
        spectrum = math.prod(factors[1:], start=factors[0])
        return spectrum.real, spectrum.imag
    re, im = factors[0]
    for f_re, f_im in factors[1:]:
        re, im = re * f_re - im * f_im, re * f_im + im * f_re
    return re, im


# ---------------------------------------------------------------------------------------
# the filter
# ---------------------------------------------------------------------------------------
def _real_parts(ndim: int) -> bool:
    """Whether the filter is (real, imaginary) parts and the transforms matrix products:
    the export-friendly formulation, which exists for 2-D signals."""
    return ndim == 2 and is_export_friendly()


def _wrapped_columns(count: int, width, device) -> Tensor:
    """0, ..., count - 1 modulo ``width`` (a tensor operand for a symbolic width)."""
    cols = torch.arange(count, device=device)
    if isinstance(width, int):
        return cols % width
    return cols.remainder(torch.scalar_tensor(width, dtype=torch.int64, device=device))


def _blocks(sizes: Sequence, scale: int) -> list:
    """(s, n_1, s, n_2, ..., s, n_{d-1}): the output grid but its last axis, in s blocks."""
    return [d for size in sizes[:-1] for d in (scale, size)]


def _broadcast_over_blocks(t: Tensor, ndim: int) -> Tensor:
    """(B, C, n_1, ..., n_{d-1}, K) -> (B, C, 1, n_1, ..., 1, n_{d-1}, K)."""
    for axis in range(ndim - 1):
        t = t.unsqueeze(2 + 2 * axis)
    return t


def spectral_filter(
    kernel: Tensor, lam: Tensor, scale: int, sizes: Sequence[int], nearest_x0: bool = True
) -> Tensor:
    r"""Spectral filter of the reverse convolution for a padded input of ``sizes``: the
    paper's :math:`X_0` (``nearest_x0``, :math:`G`) or :math:`X_0 = 0` (:math:`G_0`), see
    the module docstring. Built in the dtype of ``kernel`` even under autocast.

    Shape:
        - kernel: :math:`(B, C, k_1, ..., k_d)`; lam: :math:`(B', C, 1, ...)` or all ones,
          with :math:`B, B' \in \{1, N\}`; sizes: the padded input size
          :math:`(n_1, ..., n_d)`.
        - output: complex :math:`(\max(B, B'), C, s n_1, ..., \lfloor s n_d/2\rfloor + 1)`,
          the half spectrum as produced by ``rfftn``; in the export-friendly formulation
          (2-D) real, :math:`(\max(B, B'), C, 2, s n_1, \lfloor s n_2/2\rfloor + 1)`, the
          real and imaginary parts.
    """
    with autocast_off(kernel.device.type):
        ks = kernel.shape[2:]
        out = [scale * size for size in sizes]
        check_fits(ks, out, "padded output")
        # the kernel's OTF: the kernel centred on the origin of the output grid
        k_re, k_im = small_dft(kernel, [-(k // 2) for k in ks], out, onesided=True)
        if scale == 1:
            return _identity_scale_filter(k_re, k_im, lam, nearest_x0, _real_parts(len(ks)))
        return _upsampling_filter(kernel, k_re, k_im, lam, scale, list(sizes), nearest_x0)


def _identity_scale_filter(
    k_re: Tensor, k_im: Tensor, lam: Tensor, nearest_x0: bool, parts: bool
) -> Tensor:
    """G = (conj(K) + λ) / (|K|² + λ), or conj(K) / (|K|² + λ) for X0 = 0 (k_re consumed)."""
    if parts or not nearest_x0 or tracks_grad(k_re, k_im, lam):
        denominator = k_re.square() + k_im.square() + lam
        real = (k_re + lam) / denominator if nearest_x0 else k_re / denominator
        if parts:
            return torch.stack([real, -k_im / denominator], dim=2)
        return torch.complex(real, -k_im / denominator)
    # Outside autograd: write straight into the interleaved complex result and reuse k_re
    # (a temporary) for 1/(|K|² + λ). Large filters are bound by memory traffic, and every
    # full-size temporary costs a fresh allocation.
    if lam.shape[0] > k_re.shape[0]:  # one λ per sample: the filter is written in k_re
        k_re = k_re.expand(lam.shape[0], *k_re.shape[1:]).clone()
    out = torch.empty(
        *torch.broadcast_shapes(k_re.shape, lam.shape), 2, dtype=k_re.dtype, device=k_re.device
    )
    torch.add(k_re, lam, out=out[..., 0])
    inverse = k_re.square_().addcmul_(k_im, k_im).add_(lam).reciprocal_()
    out[..., 0].mul_(inverse)
    torch.mul(k_im, inverse, out=out[..., 1]).neg_()
    return torch.view_as_complex(out)


def _upsampling_filter(
    weight: Tensor,
    k_re: Tensor,
    k_im: Tensor,
    lam: Tensor,
    scale: int,
    sizes: list,
    nearest_x0: bool,
) -> Tensor:
    """G (or G0) for s > 1: the input-resolution quotient tiled over the s^d blocks."""
    b, c = weight.shape[:2]
    ndim = len(sizes)
    out = [scale * size for size in sizes]
    half = out[-1] // 2 + 1
    power, (cross_re, cross_im) = decimated_spectra(weight, scale, sizes)
    denominator = power + lam
    if nearest_x0:
        q_re, q_im = (1 - cross_re) / denominator, -cross_im / denominator
    else:
        q_re, q_im = denominator.reciprocal(), None
    # column v of the output half spectrum reads column v mod n_d of the input-size arrays
    cols = _wrapped_columns(half, sizes[-1], weight.device)
    q_re = _broadcast_over_blocks(q_re.index_select(-1, cols), ndim)
    k_re = k_re.view(b, c, *_blocks(sizes, scale), half)
    k_im = k_im.view(b, c, *_blocks(sizes, scale), half)
    if q_im is None:  # conj(K)·q with a real q
        g_re, g_im = k_re * q_re, -k_im * q_re
    else:
        q_im = _broadcast_over_blocks(q_im.index_select(-1, cols), ndim)
        box_re, box_im = box_spectrum(scale, out, weight.dtype, weight.device, _real_parts(ndim))
        box_re = box_re.view(*_blocks(sizes, scale), half)
        box_im = box_im.view(*_blocks(sizes, scale), half)
        g_re = k_re * q_re + k_im * q_im + box_re  # conj(K)·q + B
        g_im = k_re * q_im - k_im * q_re + box_im
    if _real_parts(ndim):
        return torch.stack([g_re, g_im], dim=2).reshape(-1, c, 2, *out[:-1], half)
    return torch.complex(g_re, g_im).reshape(-1, c, *out[:-1], half)


# ---------------------------------------------------------------------------------------
# applying a filter
# ---------------------------------------------------------------------------------------
def apply_spectral_filter(y: Tensor, filt: Tensor, scale: int) -> Tensor:
    r"""Apply a filter from :func:`spectral_filter` to a padded input: one FFT of ``y``,
    its spectrum tiled :math:`s` times per axis, the product, one inverse real FFT.

    Shape:
        - y: :math:`(N, C, n_1, ..., n_d)` real.
        - filt: :math:`(B, C, s n_1, ..., \lfloor s n_d/2\rfloor+1)` complex,
          :math:`B \in \{1, N\}` (in the export-friendly formulation, 2-D:
          :math:`(B, C, 2, s n_1, \lfloor s n_2/2\rfloor+1)` real).
        - output: :math:`(N, C, s n_1, ..., s n_d)` real.
    """
    ndim = y.dim() - 2
    if _real_parts(ndim):
        return _apply_in_real_parts(y, filt, scale)
    engine = engine_for(y)
    sizes = list(y.shape[2:])
    if scale == 1:
        if engine.takes_scratch and not tracks_grad(y, filt):
            # the spectrum is a temporary: into a reused scratch buffer (no fresh pages)
            shape = (*y.shape[:-1], sizes[-1] // 2 + 1)
            dtype = torch.promote_types(y.dtype, torch.complex64)
            with scratch(shape, dtype, like=y) as spectrum:
                return _filter_half_spectrum(engine.rfftn(y, ndim, out=spectrum), filt, sizes)
        return _filter_half_spectrum(engine.rfftn(y, ndim), filt, sizes)
    y_hat = engine.fftn(y, ndim)
    c = y_hat.shape[1]
    out = [scale * size for size in sizes]
    half = out[-1] // 2 + 1
    # the spectrum of the s-fold zero-upsampled signal is the input spectrum tiled s^d times
    cols = _wrapped_columns(half, sizes[-1], y_hat.device)
    tiled = _broadcast_over_blocks(y_hat.index_select(-1, cols), ndim)
    x_hat = filt.view(filt.shape[0], c, *_blocks(sizes, scale), half) * tiled
    x_hat = x_hat.reshape(-1, c, *out[:-1], half)
    return engine_for(x_hat).irfftn(x_hat, out)


def _filter_half_spectrum(y_hat: Tensor, filt: Tensor, sizes: list[int]) -> Tensor:
    """``irfftn(y_hat * filt)`` to ``sizes`` (s = 1), the product in place into ``y_hat``
    where it can be."""
    in_place = (
        not tracks_grad(y_hat, filt)
        and y_hat.shape[0] >= filt.shape[0]
        and y_hat.dtype == filt.dtype
    )
    product = y_hat.mul_(filt) if in_place else y_hat * filt
    return engine_for(product).irfftn(product, sizes)


def _apply_in_real_parts(y: Tensor, filt: Tensor, scale: int) -> Tensor:
    r""":func:`apply_spectral_filter` in real arithmetic, with :mod:`~conversenet.operator.dft`.

    Shape:
        - y: :math:`(N, C, H, W)` real.
        - filt: :math:`(B, C, 2, sH, \lfloor sW/2\rfloor+1)` real: real and imaginary parts.
        - output: :math:`(N, C, sH, sW)` real.
    """
    n, c, h, w = y.shape
    out_h, out_w = scale * h, scale * w
    half = out_w // 2 + 1
    # The input spectrum at the output's columns (read modulo W: tiled s times), as
    # [[re; im], [-im; re]]; its rows broadcast over the s row blocks of the filter.
    spectrum = dft.forward_spectrum(y, half).view(n, c, 2, 2, 1, h, half)
    filt = filt.view(filt.shape[0], c, 2, 1, scale, h, half)
    # (re, im) of the product = g_re·(re, im) + g_im·(-im, re)
    product = (filt * spectrum).sum(dim=2).reshape(n, c, 2 * out_h, half)
    return dft.inverse_real(product, out_w)


# ---------------------------------------------------------------------------------------
# the textbook pieces
# ---------------------------------------------------------------------------------------
def padded_otf(kernel: Tensor, sizes: Sequence[int]) -> Tensor:
    """The kernels zero-padded to ``sizes`` and centred on the origin (circularly): their
    FFT is the OTF :math:`\\hat K`."""
    ks = kernel.shape[2:]
    pads = [p for k, size in zip(reversed(ks), reversed(sizes), strict=True) for p in (0, size - k)]
    dims = tuple(range(2, kernel.dim()))
    return torch.roll(F.pad(kernel, pads), shifts=[-(k // 2) for k in ks], dims=dims)


def block_mean(a: Tensor, scale: int) -> Tensor:
    """Mean over the s^d aliased blocks of every spatial axis: (.., s·n, ..) -> (.., n, ..)."""
    sizes = a.shape[2:]
    view = [*a.shape[:2], *(d for size in sizes for d in (scale, size // scale))]
    return a.reshape(view).mean(dim=tuple(2 + 2 * i for i in range(len(sizes))))


def reverse_conv_filter(
    kernel: Tensor, lam: Tensor, scale: int, height: int, width: int, nearest_x0: bool = True
) -> Tensor:
    """:func:`spectral_filter` of a padded height×width input (the 2-D spelling)."""
    return spectral_filter(kernel, lam, scale, (height, width), nearest_x0)
