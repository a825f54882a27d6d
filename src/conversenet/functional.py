r"""Functional form of the reverse-convolution operator (Converse2D).

For every channel ``c`` with kernel :math:`K` (:math:`k\times k`), scale :math:`s`
and regulariser :math:`\lambda = \sigma(b - 9) + \varepsilon`, Converse2D returns

.. math::

    X^\star = \arg\min_X \|y - (X \otimes K)\!\downarrow_s\|^2 + \lambda \|X - X_0\|^2,

with :math:`X_0` the nearest-neighbour upsampling of :math:`y`, solved in closed form
under circular boundary conditions on the padded input.

Because :math:`X_0` is built from :math:`y`, the solution is a fixed spectral filter of
the spectrum of :math:`y`: writing :math:`\hat K` for the OTF of the kernel at the
output size :math:`sH\times sW`, :math:`\hat B` for the spectrum of the :math:`s\times s`
box that implements nearest upsampling and :math:`\overline{(\cdot)}` for the mean over
the :math:`s\times s` spectral blocks (the spectrum of the :math:`s`-fold decimation),

.. math::

    \hat X = \operatorname{tile}_s(\hat y)\cdot G,\qquad
    G = \operatorname{conj}(\hat K)\,\operatorname{tile}_s\!\left[
        \frac{1 - \overline{\hat K \hat B}}{\overline{|\hat K|^2} + \lambda}\right] + \hat B .

For :math:`s = 1` this is :math:`G = (\operatorname{conj}(\hat K) + \lambda) /
(|\hat K|^2 + \lambda)`. One FFT at the input resolution, one product with
:math:`G` and one inverse real FFT at the output resolution give the result; :math:`G`
depends only on the parameters and the padded size, so layers cache it for inference.

:math:`G` itself is built without any FFT of a padded kernel: :math:`\hat K` is the DFT
of a :math:`k\times k` array, computed by small matrix products, and the two block means
are the spectra of small decimated arrays (the kernel's autocorrelation and the kernel
smeared by the :math:`s\times s` box), so everything but the final product with
:math:`\hat K` happens at the input resolution.

ONNX export: the converter of ``torch.onnx.export(..., dynamo=True)`` lowers only a few
operations on complex tensors, and onnxruntime's ``DFT`` kernel is slow and, for lengths
that are not powers of two, inaccurate. So while exporting
(:func:`torch.onnx.is_in_onnx_export`, or inside :func:`export_friendly`) the operator
runs in real arithmetic: the filter as real and imaginary parts, the transforms as matrix products
(:mod:`conversenet.dft`). Same closed form; the eager path keeps PocketFFT and complex
tensors.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from . import dft as matmul_dft

__all__ = [
    "PADDING_MODES",
    "apply_converse2d_filter",
    "converse2d",
    "converse2d_filter",
    "converse2d_literal",
    "export_friendly",
    "is_export_friendly",
    "regularizer",
]

PADDING_MODES = ("circular", "replicate", "reflect", "constant")
BIAS_SHIFT = 9.0  # λ = sigmoid(bias - 9) + eps: a zero bias gives λ ≈ 1.2e-4

FilterFn = Callable[[Tensor, Tensor, int, int], Tensor]

_force_export_friendly = False


@contextlib.contextmanager
def export_friendly(enabled: bool = True) -> Iterator[None]:
    """Use the export-friendly formulation (real arithmetic, matrix-product DFTs) inside
    this block.

    ``torch.onnx.export`` switches to it by itself; this context manager forces it in eager
    mode (to test it, or for another exporter). Layers do not cache filters meanwhile.
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


def regularizer(bias: Tensor, eps: float) -> Tensor:
    """The per-channel regularisation weight λ = sigmoid(bias − 9) + eps (same shape as bias)."""
    return torch.sigmoid(bias - BIAS_SHIFT) + eps


# ---------------------------------------------------------------------------------------
# argument checks (shared with the layers)
# ---------------------------------------------------------------------------------------
def check_hyperparameters(kernel_size: int, scale: int, padding: int, padding_mode: str, eps):
    """Validate the non-tensor arguments of the operator; raise TypeError/ValueError."""
    for name, value in (("kernel_size", kernel_size), ("scale", scale), ("padding", padding)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
    if scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"eps must be a real number, got {type(eps).__name__} {eps!r}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")


def _check_tensors(x: Tensor, weight: Tensor, bias: Tensor) -> None:
    for name, t in (("input", x), ("weight", weight), ("bias", bias)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
    if x.dim() != 4:
        raise ValueError(f"input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    c = x.shape[1]
    if weight.dim() != 4 or weight.shape[:2] != (1, c):
        raise ValueError(
            f"weight must have shape (1, {c}, kH, kW) for an input with {c} channels, "
            f"got {tuple(weight.shape)}"
        )
    if tuple(bias.shape) != (1, c, 1, 1):
        raise ValueError(f"bias must have shape (1, {c}, 1, 1), got {tuple(bias.shape)}")


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
# the fast operator
# ---------------------------------------------------------------------------------------
class _RealFFT2(torch.autograd.Function):
    """``torch.fft.rfft2`` over the last two axes, with a cheaper backward.

    PyTorch differentiates ``rfft2`` by zero-filling the missing half of the spectrum and
    running a full complex FFT. The same gradient is one inverse real FFT: the adjoint of
    the one-sided transform is ``H·W·irfft2`` of the incoming gradient with the columns
    that stand for two conjugate frequencies halved.
    """

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return torch.fft.rfft2(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.size = tuple(inputs[0].shape[-2:])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        h, w = ctx.size
        paired = w - grad.shape[-1]  # columns 1..paired have a conjugate twin
        weights = grad.new_ones(grad.shape[-1], dtype=grad.real.dtype)
        weights[1 : 1 + paired] = 0.5
        return torch.fft.irfft2(grad * weights, s=(h, w)) * (h * w)


def _rfft2(x: Tensor) -> Tensor:
    if x.requires_grad and torch.is_grad_enabled():
        return _RealFFT2.apply(x)
    return torch.fft.rfft2(x)


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


def _otf(weight: Tensor, height: int, width: int) -> Tensor:
    """Zero-pad the kernels to height×width and centre them on the origin (circularly)."""
    kh, kw = weight.shape[-2:]
    if kh > height or kw > width:
        raise ValueError(
            f"kernel {kh}x{kw} does not fit the padded output {height}x{width}; "
            "use a larger input or padding"
        )
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


def converse2d_filter(
    weight: Tensor, bias: Tensor, scale: int, height: int, width: int, eps: float
) -> Tensor:
    r"""Spectral filter :math:`G` of Converse2D for a padded input of size height×width.

    Args:
        weight: kernels, shape :math:`(B, C, k_H, k_W)`; :math:`B = 1` for a layer, or one
            kernel set per sample.
        bias: regulariser logits, shape :math:`(1, C, 1, 1)`.
        scale: integer upsampling factor :math:`s`.
        height, width: spatial size of the *padded* input.
        eps: floor added to λ.

    Returns:
        Complex tensor of shape :math:`(B, C, sH, \lfloor sW/2 \rfloor + 1)`: the half
        spectrum (as produced by ``rfft2``) of the filter; see the module docstring. When
        :func:`is_export_friendly`, the same values as a real tensor with the real and
        imaginary parts stacked on axis 2, :math:`(B, C, 2, sH, \lfloor sW/2 \rfloor + 1)`.
    """
    lam = regularizer(bias, eps)
    kh, kw = weight.shape[-2:]
    out_h, out_w = scale * height, scale * width
    if kh > out_h or kw > out_w:
        raise ValueError(
            f"kernel {kh}x{kw} does not fit the padded output {out_h}x{out_w}; "
            "use a larger input or padding"
        )
    # the kernel's OTF: the kernel centred on the origin of the output grid
    k_re, k_im = _small_dft2(weight, (-(kh // 2), -(kw // 2)), out_h, out_w, onesided=True)
    blocks = is_export_friendly()
    if scale == 1:
        if blocks:
            denominator = k_re.square() + k_im.square() + lam
            return torch.stack([(k_re + lam) / denominator, -k_im / denominator], dim=2)
        return _identity_scale_filter(k_re, k_im, lam)

    b, c = weight.shape[:2]
    half = out_w // 2 + 1
    if blocks:
        box_re, box_im = _box_spectrum_parts(scale, out_h, out_w, weight.dtype, weight.device)
    else:
        box = _box_spectrum(scale, out_h, out_w, weight.dtype, weight.device)
        box_re, box_im = box.real, box.imag
    g_re, g_im = _scaled_filter_parts(weight, lam, k_re, k_im, box_re, box_im, scale, width)
    if blocks:
        return torch.stack([g_re, g_im], dim=2).reshape(b, c, 2, out_h, half)
    return torch.complex(g_re, g_im).reshape(b, c, out_h, half)


def _scaled_filter_parts(
    weight: Tensor,
    lam: Tensor,
    k_re: Tensor,
    k_im: Tensor,
    box_re: Tensor,
    box_im: Tensor,
    scale: int,
    width: int,
) -> tuple[Tensor, Tensor]:
    """Real and imaginary parts of G for scale > 1, each (B, C, s, H, half)."""
    b, c = weight.shape[:2]
    height = k_re.shape[-2] // scale
    half = k_re.shape[-1]
    power, (cross_re, cross_im) = _decimated_spectra(weight, scale, height, width)
    denominator = power + lam
    q_re, q_im = (1 - cross_re) / denominator, -cross_im / denominator
    # column v of the output half spectrum reads column v mod W of the input-size arrays
    cols = torch.arange(half, device=weight.device)
    if isinstance(width, int):
        cols = cols % width
    else:  # a symbolic size (dynamic-shape export): use a tensor operand
        cols = cols.remainder(torch.scalar_tensor(width, dtype=torch.int64, device=cols.device))
    q_re = q_re.index_select(-1, cols).unsqueeze(2)  # (B, C, 1, H, half)
    q_im = q_im.index_select(-1, cols).unsqueeze(2)
    k_re = k_re.view(b, c, scale, height, half)
    k_im = k_im.view(b, c, scale, height, half)
    box_re = box_re.view(scale, height, half)
    box_im = box_im.view(scale, height, half)
    g_re = k_re * q_re + k_im * q_im + box_re  # conj(K)·q + B
    g_im = k_re * q_im - k_im * q_re + box_im
    return g_re, g_im


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
        return torch.fft.irfft2(product, s=(h, width))
    out_h, out_w = scale * h, scale * width
    half = out_w // 2 + 1
    x_hat = filt.view(filt.shape[0], c, scale, h, half) * _tile_columns(y_hat, half)
    return torch.fft.irfft2(x_hat.reshape(-1, c, out_h, half), s=(out_h, out_w))


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
    y_hat = _rfft2(y) if scale == 1 else torch.fft.fft2(y)
    return _filter_spectrum(y_hat, filt, scale, y.shape[-1])


def _filter_spectrum_blocks(y: Tensor, filt: Tensor, scale: int) -> Tensor:
    """:func:`apply_converse2d_filter` in real arithmetic, with :mod:`conversenet.dft`.

    Shape:
        - y: :math:`(N, C, H, W)` real.
        - filt: :math:`(B, C, 2, sH, \\lfloor sW/2\\rfloor+1)` real: real and imaginary parts.
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


def _default_filter(scale: int, eps: float) -> FilterFn:
    return lambda weight, bias, h, w: converse2d_filter(weight, bias, scale, h, w, eps)


def converse2d_forward(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    scale: int,
    padding: int,
    padding_mode: str,
    get_filter: FilterFn,
) -> Tensor:
    """Shared body of :func:`converse2d` and the layer: checks, padding, dtype, cropping."""
    _check_tensors(x, weight, bias)
    n, c, height, width = x.shape
    if height == 0 or width == 0:
        raise ValueError(f"input must have a non-empty spatial size, got {height}x{width}")
    if n == 0:  # an empty batch (FFT backends reject it); keep the autograd connection
        out = x.new_zeros(0, c, scale * height, scale * width)
        return out + 0 * (x.sum() + weight.sum() + bias.sum()).to(x.dtype)
    dtype = _compute_dtype(x.dtype)
    y = pad_input(x.to(dtype), padding, padding_mode)
    h, w = y.shape[-2:]
    filt = get_filter(weight.to(dtype), bias.to(dtype), h, w)
    out = apply_converse2d_filter(y, filt, scale)
    if padding > 0:
        crop = padding * scale
        out = out[..., crop : out.shape[-2] - crop, crop : out.shape[-1] - crop]
    return out.to(x.dtype)


def converse2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    scale: int = 1,
    padding: int = 2,
    padding_mode: str = "circular",
    eps: float = 1e-5,
) -> Tensor:
    r"""Reverse convolution of ``x`` by depthwise kernels ``weight``.

    Solves, per channel, :math:`\min_X \|y - (X\otimes K)\downarrow_s\|^2 +
    \lambda\|X - X_0\|^2` in closed form (see the module docstring), where ``y`` is
    ``x`` padded by ``padding`` with ``padding_mode`` and ``λ = sigmoid(bias - 9) + eps``.

    Args:
        x: input, :math:`(N, C, H, W)`, floating point. float16/bfloat16 are computed in
            float32 and returned in the input dtype.
        weight: kernels, :math:`(1, C, k, k)`.
        bias: regulariser logits, :math:`(1, C, 1, 1)`.
        scale: integer upsampling factor :math:`s \ge 1`.
        padding: padding on every side before solving; ``padding * scale`` is cropped after.
        padding_mode: one of ``circular``, ``replicate``, ``reflect``, ``constant`` (zeros).
        eps: floor added to λ.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C, sH, sW)`

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> w = torch.softmax(torch.randn(1, 3, 9), -1).view(1, 3, 3, 3)
        >>> converse2d(x, w, torch.zeros(1, 3, 1, 1), scale=2).shape
        torch.Size([2, 3, 32, 32])
    """
    _check_tensors(x, weight, bias)
    check_hyperparameters(weight.shape[-1], scale, padding, padding_mode, eps)
    return converse2d_forward(
        x, weight, bias, scale, padding, padding_mode, _default_filter(scale, eps)
    )


# ---------------------------------------------------------------------------------------
# the literal algorithm, kept as the reference for tests and benchmarks
# ---------------------------------------------------------------------------------------
def converse2d_literal(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    scale: int = 1,
    padding: int = 2,
    padding_mode: str = "circular",
    eps: float = 1e-5,
) -> Tensor:
    r"""The paper's closed-form solution, computed step by step at the output resolution.

    .. math::

        X^\star = \mathcal F^{-1}\Big(\tfrac1\lambda\big(L - \operatorname{conj}(F_K)
        \operatorname{tile}_s\big[\operatorname{avg}_s(F_K L) /
        (\operatorname{avg}_s|F_K|^2 + \lambda)\big]\big)\Big),\quad
        L = \operatorname{conj}(F_K)\,\mathcal F(y\uparrow_s) + \lambda\,\mathcal F(X_0).

    Slow (full complex FFTs of the zero-upsampled input, the filter rebuilt every call);
    it exists so the fast path can be checked and benchmarked against it.
    Same arguments and shapes as :func:`converse2d`.
    """
    _check_tensors(x, weight, bias)
    check_hyperparameters(weight.shape[-1], scale, padding, padding_mode, eps)
    s = scale
    y = pad_input(x, padding, padding_mode)
    n, c, h, w = y.shape
    lam = regularizer(bias, eps)

    y_up = torch.zeros(n, c, s * h, s * w, dtype=y.dtype, device=y.device)
    y_up[..., ::s, ::s] = y  # s-1 zeros after every sample
    x0 = F.interpolate(y, scale_factor=s, mode="nearest") if s > 1 else y

    f_k = torch.fft.fftn(_otf(weight, s * h, s * w), dim=(-2, -1))
    f_k_conj = torch.conj(f_k)
    rhs = f_k_conj * torch.fft.fftn(y_up, dim=(-2, -1)) + torch.fft.fftn(lam * x0, dim=(-2, -1))
    numerator = _block_mean(f_k * rhs, s)
    denominator = _block_mean(torch.abs(f_k) ** 2, s) + lam
    correction = f_k_conj * (numerator / denominator).repeat(1, 1, s, s)
    out = torch.real(torch.fft.ifftn((rhs - correction) / lam, dim=(-2, -1)))
    if padding > 0:
        crop = padding * s
        out = out[..., crop:-crop, crop:-crop]
    return out
