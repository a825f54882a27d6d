r"""The spectral machinery of the reverse-convolution operator, shared by every form of it.

The pieces of the fast 2-D closed form (see :mod:`conversenet.functional` for the
maths): the input padding and compute dtype, the real FFTs (pocketfft outside autograd), the
small DFT products that give the kernel's OTF without an FFT of a padded kernel, the
decimated spectra (block means), and the application of a spectral filter to a padded
input. :mod:`conversenet.functional` and :mod:`conversenet.reverse_conv` import them from
here; this module imports nothing of the package.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import scipy.fft
import torch
import torch.nn.functional as F
from torch import Tensor

from . import dft as matmul_dft

__all__ = ["apply_converse2d_filter", "autocast_off", "pad_input", "reverse_conv_filter"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    # There is no half-precision FFT on CPU, and half FFTs on CUDA only take powers of two.
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def pad_input(x: Tensor, padding: int, padding_mode: str) -> Tensor:
    """Pad the last two dimensions by ``padding`` on each side with ``padding_mode``."""
    if padding == 0:
        return x
    h, w = x.shape[-2:]
    if padding_mode == "reflect" and (padding >= h or padding >= w):
        raise ValueError(
            f"reflect padding {padding} needs an input larger than the padding on both axes, "
            f"got {h}x{w}; use a smaller padding or another padding_mode"
        )
    return F.pad(x, (padding,) * 4, mode=padding_mode)


# ---------------------------------------------------------------------------------------
# the fast operator's building blocks
# ---------------------------------------------------------------------------------------
_force_export_friendly = False


@contextlib.contextmanager
def export_friendly(enabled: bool = True) -> Iterator[None]:
    """Use the export-friendly formulation (real arithmetic, matrix-product DFTs) inside
    this block.

    ONNX export: the converter of ``torch.onnx.export(..., dynamo=True)`` lowers only a few
    operations on complex tensors, and onnxruntime's ``DFT`` kernel is slow and, for
    lengths that are not powers of two, inaccurate. ``torch.onnx.export`` switches to this
    formulation by itself (same closed form: the filter as real and imaginary parts, the
    transforms as matrix products of :mod:`conversenet.dft`); this context manager forces
    it in eager mode (to test it, or for another exporter). Layers do not cache filters
    meanwhile.
    """
    global _force_export_friendly
    previous, _force_export_friendly = _force_export_friendly, bool(enabled)
    try:
        yield
    finally:
        _force_export_friendly = previous


def is_export_friendly() -> bool:
    """Whether the operator currently runs its export-friendly formulation."""
    return _force_export_friendly or torch.onnx.is_in_onnx_export()


def autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """``torch.autocast(device_type, enabled=False)``, or no context while exporting (no
    autocast is on then, and an exporter traces the block as an extra sub-graph: a fifth
    of the export time of full-depth Converse-DnCNN)."""
    if is_export_friendly():
        return contextlib.nullcontext()
    return torch.autocast(device_type, enabled=False)


def _pocketfft_applies(*tensors: Tensor) -> bool:
    """Whether an FFT outside autograd runs in scipy's pocketfft: CPU tensors, eager mode.

    On the CPU, PyTorch's FFTs (MKL) are slower than pocketfft at the odd sizes a padded
    image has (268 = 4·67, 524 = 4·131; ``benchmarks/bench_fft.py``); pocketfft works on
    the same memory with PyTorch's thread count. Tensors that autograd tracks keep
    PyTorch's transforms (a Converse-DnCNN training step took 1.4 s through pocketfft,
    1.0-1.1 s without; ``benchmarks/bench_training.py``), as do compiled graphs and ONNX
    export.
    """
    return (
        all(t.device.type == "cpu" for t in tensors)
        and not _tracks_grad(*tensors)
        and not torch.compiler.is_compiling()
        and not is_export_friendly()
    )


def _workers() -> int:
    return torch.get_num_threads()


def _rfft2(x: Tensor) -> Tensor:
    if _pocketfft_applies(x):
        return torch.from_numpy(scipy.fft.rfft2(x.detach().numpy(), workers=_workers()))
    return torch.fft.rfft2(x)


def _fft2(x: Tensor) -> Tensor:
    if _pocketfft_applies(x):
        return torch.from_numpy(scipy.fft.fft2(x.detach().numpy(), workers=_workers()))
    return torch.fft.fft2(x)


def _irfft2(x_hat: Tensor, size: tuple[int, int]) -> Tensor:
    """``torch.fft.irfft2(x_hat, s=size)``; outside autograd ``x_hat`` may be overwritten
    (it is a temporary)."""
    if _pocketfft_applies(x_hat):
        data = x_hat.detach().numpy()
        return torch.from_numpy(
            scipy.fft.irfft2(data, s=size, workers=_workers(), overwrite_x=True)
        )
    return torch.fft.irfft2(x_hat, s=size)


def _twiddles(n: int, count: int, length: int, offset: int, dtype, device):
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


def _small_dft2(a: Tensor, offset: tuple[int, int], height: int, width: int, onesided: bool):
    r"""DFT on a height×width grid of a small array placed with its [0, 0] at ``offset``.

    Returns the real and imaginary parts of
    :math:`\sum_{i,j} a_{ij} e^{-2\pi\mathrm{i}(u(i+o_0)/H + v(j+o_1)/W)}` for every
    row :math:`u` and the columns :math:`v < W` (``onesided``: :math:`v \le W/2`).
    Elements that land on the same grid point (a larger than the grid) add up, as for a
    circular layout. Two small matrix products per axis instead of an FFT of the
    zero-padded grid: no large temporary, and a cheap backward.

    Shape:
        - a: :math:`(..., h, w)` real; outputs: :math:`(..., H, W')`.
    """
    h, w = a.shape[-2:]
    cols = width // 2 + 1 if onesided else width
    cos_h, sin_h = _twiddles(height, height, h, offset[0], a.dtype, a.device)
    cos_w, sin_w = _twiddles(width, cols, w, offset[1], a.dtype, a.device)
    # (C_h - i S_h) a (C_w - i S_w)^T with the two row factors stacked along the short
    # axis: one product per output part and no full-size temporaries
    a_rows = torch.cat([a @ cos_w.T, a @ sin_w.T], dim=-2)  # (..., 2h, W')
    real = torch.cat([cos_h, -sin_h], dim=1) @ a_rows
    imag = torch.cat([-sin_h, -cos_h], dim=1) @ a_rows
    return real, imag


def _check_kernel_fits(kernel: Tensor, height: int, width: int) -> None:
    kh, kw = kernel.shape[-2:]
    if kh > height or kw > width:
        raise ValueError(
            f"kernel {kh}x{kw} does not fit the padded output {height}x{width}; "
            "use a larger input or padding"
        )


def _otf(weight: Tensor, height: int, width: int) -> Tensor:
    """Zero-pad the kernels to height×width and centre them on the origin (circularly)."""
    _check_kernel_fits(weight, height, width)
    kh, kw = weight.shape[-2:]
    otf = F.pad(weight, (0, width - kw, 0, height - kh))
    return torch.roll(otf, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))


def _block_mean(a: Tensor, scale: int) -> Tensor:
    """Mean of the scale×scale blocks of the last two axes: (..., sH, sW) -> (..., H, W)."""
    *lead, hh, ww = a.shape
    return a.reshape(*lead, scale, hh // scale, scale, ww // scale).mean(dim=(-4, -2))


def _box_spectrum(scale: int, height: int, width: int, dtype, device) -> Tensor:
    """One-sided 2-D DFT (height×(width//2+1)) of the scale×scale box at the origin."""

    def axis(n: int) -> Tensor:
        box = torch.zeros(n, dtype=dtype, device=device)
        box[:scale] = 1
        return box

    return torch.fft.fft(axis(height))[:, None] * torch.fft.rfft(axis(width))[None, :]


def _box_spectrum_parts(scale: int, height: int, width: int, dtype, device):
    """:func:`_box_spectrum` as (real, imaginary) parts, from twiddles (no complex tensor)."""
    cos_h, sin_h = _twiddles(height, height, scale, 0, dtype, device)
    cos_w, sin_w = _twiddles(width, width // 2 + 1, scale, 0, dtype, device)
    a_re, a_im = cos_h.sum(-1)[:, None], -sin_h.sum(-1)[:, None]
    b_re, b_im = cos_w.sum(-1)[None, :], -sin_w.sum(-1)[None, :]
    return a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re


def _decimated_spectra(weight: Tensor, scale: int, height: int, width: int):
    r"""Block means of :math:`|\hat K|^2` and :math:`\hat K\hat B` at the input resolution.

    The mean of the :math:`s\times s` aliased blocks of a spectrum is the spectrum of the
    :math:`s`-fold decimated signal, so both come from small spatial arrays: the kernel's
    autocorrelation (for the power) and the kernel convolved with the :math:`s\times s`
    box (for the cross term), each sampled every :math:`s` pixels.

    Returns:
        power: real, :math:`(B, C, H, W)`; cross (real part, imaginary part), each
        :math:`(B, C, H, W)`.
    """
    b, c, kh, kw = weight.shape
    flat = weight.reshape(1, b * c, kh, kw)
    filters = weight.reshape(b * c, 1, kh, kw)

    # autocorrelation: lag d sits at index d + k - 1; keep the lags that are multiples of s
    auto = F.conv2d(F.pad(flat, (kw - 1, kw - 1, kh - 1, kh - 1)), filters, groups=b * c)
    r0, c0 = (kh - 1) % scale, (kw - 1) % scale
    auto = auto[..., r0::scale, c0::scale]
    auto = auto.reshape(b, c, *auto.shape[-2:])
    offset = ((r0 - kh + 1) // scale, (c0 - kw + 1) // scale)
    power = _small_dft2(auto, offset, height, width, onesided=False)[0]

    # kernel ⊛ box: tap r of the result sits at position r - k//2 of the output grid
    box = flat.new_ones(b * c, 1, scale, scale)
    smeared = F.conv2d(F.pad(flat, (scale - 1,) * 4), box, groups=b * c)
    r0, c0 = (kh // 2) % scale, (kw // 2) % scale
    smeared = smeared[..., r0::scale, c0::scale]
    smeared = smeared.reshape(b, c, *smeared.shape[-2:])
    offset = ((r0 - kh // 2) // scale, (c0 - kw // 2) // scale)
    cross = _small_dft2(smeared, offset, height, width, onesided=False)
    return power, cross


def _tracks_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _identity_scale_filter(k_re: Tensor, k_im: Tensor, lam: Tensor) -> Tensor:
    """G = (conj(K) + λ) / (|K|² + λ) from the real and imaginary parts of K (consumed)."""
    if _tracks_grad(k_re, k_im, lam):
        denominator = k_re.square() + k_im.square() + lam
        return torch.complex((k_re + lam) / denominator, -k_im / denominator)
    # Outside autograd: write straight into the interleaved complex result and reuse k_re
    # (a temporary of the caller) for 1/(|K|² + λ). Large filters are bound by memory
    # traffic, and every full-size temporary costs a fresh allocation.
    out = torch.empty(
        *torch.broadcast_shapes(k_re.shape, lam.shape), 2, dtype=k_re.dtype, device=k_re.device
    )
    torch.add(k_re, lam, out=out[..., 0])
    inverse = k_re.square_().addcmul_(k_im, k_im).add_(lam).reciprocal_()
    out[..., 0].mul_(inverse)
    torch.mul(k_im, inverse, out=out[..., 1]).neg_()
    return torch.view_as_complex(out)


def _identity_scale_zero_filter(k_re: Tensor, k_im: Tensor, lam: Tensor) -> Tensor:
    """G = conj(K) / (|K|² + λ) (the Tikhonov/Wiener filter, X0 = 0) at scale 1."""
    denominator = k_re.square() + k_im.square() + lam
    return torch.complex(k_re / denominator, -k_im / denominator)


def reverse_conv_filter(
    kernel: Tensor, lam: Tensor, scale: int, height: int, width: int, nearest_x0: bool = True
) -> Tensor:
    r"""Spectral filter of the reverse convolution for a padded input of height×width.

    With the paper's :math:`X_0` (``nearest_x0``, the nearest upsampling of the input)

    .. math::

        G = \operatorname{conj}(\hat K)\,\operatorname{tile}_s\!\left[
            \frac{1 - \overline{\hat K \hat B}}{\overline{|\hat K|^2} + \lambda}\right]
            + \hat B,

    and with :math:`X_0 = 0` (the Tikhonov/Wiener solution)
    :math:`G_0 = \operatorname{conj}(\hat K)\,\operatorname{tile}_s[1 /
    (\overline{|\hat K|^2} + \lambda)]`; :math:`\hat X = \operatorname{tile}_s(\hat y)
    \cdot G`. Built in the dtype of ``kernel`` even under autocast.

    Shape:
        - kernel: :math:`(B, C, k_H, k_W)`; lam: :math:`(B', C, 1, 1)` or
          :math:`(1, 1, 1, 1)`, with :math:`B, B' \in \{1, N\}`.
        - output: complex :math:`(\max(B, B'), C, sH, \lfloor sW/2 \rfloor + 1)`, the half
          spectrum as produced by ``rfft2``.
    """
    with autocast_off(kernel.device.type):
        return _reverse_conv_filter(kernel, lam, scale, height, width, nearest_x0)


def _reverse_conv_filter(
    weight: Tensor, lam: Tensor, scale: int, height: int, width: int, nearest_x0: bool
) -> Tensor:
    kh, kw = weight.shape[-2:]
    out_h, out_w = scale * height, scale * width
    _check_kernel_fits(weight, out_h, out_w)
    # the kernel's OTF: the kernel centred on the origin of the output grid
    k_re, k_im = _small_dft2(weight, (-(kh // 2), -(kw // 2)), out_h, out_w, onesided=True)
    parts = is_export_friendly()  # (re, im) stacked on axis 2 instead of a complex tensor
    if scale == 1 and parts:
        denominator = k_re.square() + k_im.square() + lam
        real = (k_re + lam) / denominator if nearest_x0 else k_re / denominator
        return torch.stack([real, -k_im / denominator], dim=2)
    if scale == 1:
        if not nearest_x0:
            return _identity_scale_zero_filter(k_re, k_im, lam)
        if lam.shape[0] > k_re.shape[0]:  # one λ per sample: the filter is written in k_re
            k_re = k_re.expand(lam.shape[0], *k_re.shape[1:]).clone()
        return _identity_scale_filter(k_re, k_im, lam)

    b, c = weight.shape[:2]
    half = out_w // 2 + 1
    power, (cross_re, cross_im) = _decimated_spectra(weight, scale, height, width)
    denominator = power + lam
    if nearest_x0:
        q_re, q_im = (1 - cross_re) / denominator, -cross_im / denominator
    else:
        q_re, q_im = denominator.reciprocal(), None
    # column v of the output half spectrum reads column v mod W of the input-size arrays
    cols = torch.arange(half, device=weight.device)
    if isinstance(width, int):
        cols = cols % width
    else:  # a symbolic size (dynamic-shape export): use a tensor operand
        cols = cols.remainder(torch.scalar_tensor(width, dtype=torch.int64, device=cols.device))
    q_re = q_re.index_select(-1, cols).unsqueeze(2)  # (B, C, 1, H, half)
    k_re = k_re.view(b, c, scale, height, half)
    k_im = k_im.view(b, c, scale, height, half)
    if q_im is None:  # conj(K)·q with a real q
        g_re, g_im = k_re * q_re, -k_im * q_re
    else:
        q_im = q_im.index_select(-1, cols).unsqueeze(2)
        if parts:
            box_re, box_im = _box_spectrum_parts(scale, out_h, out_w, weight.dtype, weight.device)
        else:
            box = _box_spectrum(scale, out_h, out_w, weight.dtype, weight.device)
            box_re, box_im = box.real, box.imag
        box_re, box_im = box_re.view(scale, height, half), box_im.view(scale, height, half)
        g_re = k_re * q_re + k_im * q_im + box_re  # conj(K)·q + B
        g_im = k_re * q_im - k_im * q_re + box_im
    if parts:
        return torch.stack([g_re, g_im], dim=2).reshape(-1, c, 2, out_h, half)
    return torch.complex(g_re, g_im).reshape(-1, c, out_h, half)


def _tile_columns(y_hat: Tensor, half: int) -> Tensor:
    """Columns 0..half-1 of the s-fold tiled full spectrum ``y_hat`` (N, C, H, W), shaped
    (N, C, 1, H, half) to broadcast over the s row blocks: the spectrum of the s-fold
    zero-upsampled signal is the input spectrum tiled s×s."""
    cols = torch.arange(half, device=y_hat.device) % y_hat.shape[-1]
    return y_hat.index_select(-1, cols).unsqueeze(2)


def _filter_spectrum(y_hat: Tensor, filt: Tensor, scale: int, width: int) -> Tensor:
    """Multiply by the filter and return to the pixel domain at the output resolution."""
    c, h = y_hat.shape[1:3]
    if scale == 1:
        in_place = (
            not _tracks_grad(y_hat, filt)
            and y_hat.shape[0] >= filt.shape[0]
            and y_hat.dtype == filt.dtype
        )
        product = y_hat.mul_(filt) if in_place else y_hat * filt
        return _irfft2(product, (h, width))
    out_h, out_w = scale * h, scale * width
    half = out_w // 2 + 1
    x_hat = filt.view(filt.shape[0], c, scale, h, half) * _tile_columns(y_hat, half)
    return _irfft2(x_hat.reshape(-1, c, out_h, half), (out_h, out_w))


def apply_converse2d_filter(y: Tensor, filt: Tensor, scale: int) -> Tensor:
    r"""Apply a filter from :func:`converse2d_filter` to a padded input.

    Shape:
        - y: :math:`(N, C, H, W)` real.
        - filt: :math:`(B, C, sH, \lfloor sW/2\rfloor+1)` complex, :math:`B \in \{1, N\}`
          (real, :math:`(B, C, 2, sH, \lfloor sW/2\rfloor+1)`, when
          :func:`is_export_friendly`).
        - output: :math:`(N, C, sH, sW)` real.
    """
    if is_export_friendly():
        return _filter_spectrum_blocks(y, filt, scale)
    y_hat = _rfft2(y) if scale == 1 else _fft2(y)
    return _filter_spectrum(y_hat, filt, scale, y.shape[-1])


def _filter_spectrum_blocks(y: Tensor, filt: Tensor, scale: int) -> Tensor:
    """:func:`apply_converse2d_filter` in real arithmetic, with :mod:`conversenet.dft`.

    Shape:
        - y: :math:`(N, C, H, W)` real.
        - filt: :math:`(B, C, 2, sH, \\lfloor sW/2\rfloor+1)` real: real and imaginary parts.
        - output: :math:`(N, C, sH, sW)` real.
    """
    n, c, h, w = y.shape
    out_h, out_w = scale * h, scale * w
    half = out_w // 2 + 1
    # The input spectrum at the output's columns (read modulo W: tiled s times), as
    # [[re; im], [-im; re]]; its rows broadcast over the s row blocks of the filter.
    spectrum = matmul_dft.forward_spectrum(y, half).view(n, c, 2, 2, 1, h, half)
    filt = filt.view(filt.shape[0], c, 2, 1, scale, h, half)
    # (re, im) of the product = g_re·(re, im) + g_im·(-im, re)
    product = (filt * spectrum).sum(dim=2).reshape(n, c, 2 * out_h, half)
    return matmul_dft.inverse_real(product, out_w)
