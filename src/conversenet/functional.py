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
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_choice, check_int, check_real
from .spectral import (
    _block_mean,
    _box_spectrum,
    _check_kernel_fits,
    _compute_dtype,
    _decimated_spectra,
    _identity_scale_filter,
    _otf,
    _small_dft2,
    apply_converse2d_filter,
    pad_input,
)

__all__ = [
    "PADDING_MODES",
    "apply_converse2d_filter",
    "converse2d",
    "converse2d_filter",
    "converse2d_literal",
    "regularizer",
]

PADDING_MODES = ("circular", "replicate", "reflect", "constant")
BIAS_SHIFT = 9.0  # λ = sigmoid(bias - 9) + eps: a zero bias gives λ ≈ 1.2e-4

FilterFn = Callable[[Tensor, Tensor, int, int], Tensor]


def regularizer(bias: Tensor, eps: float) -> Tensor:
    """The per-channel regularisation weight λ = sigmoid(bias − 9) + eps (same shape as bias)."""
    return torch.sigmoid(bias - BIAS_SHIFT) + eps


# ---------------------------------------------------------------------------------------
# argument checks (shared with the layers)
# ---------------------------------------------------------------------------------------
def check_hyperparameters(
    kernel_size: int, scale: int, padding: int, padding_mode: str, eps: float
) -> None:
    """Validate the constructor arguments of a Converse2D layer; raise TypeError/ValueError."""
    check_int("kernel_size", kernel_size, minimum=1)
    check_options(scale, padding, padding_mode, eps)


def check_options(scale: int, padding: int, padding_mode: str, eps: float) -> None:
    """Validate the non-tensor arguments of the operator; raise TypeError/ValueError."""
    if check_int("scale", scale) < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    check_int("padding", padding, minimum=0)
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    check_real("eps", eps, minimum=0)


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


# ---------------------------------------------------------------------------------------
# the fast operator
# ---------------------------------------------------------------------------------------
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
        spectrum (as produced by ``rfft2``) of the filter; see the module docstring. It is
        computed in the dtype of ``weight`` even under autocast, which would otherwise run
        its small matrix products and convolutions in half precision.
    """
    with torch.autocast(weight.device.type, enabled=False):
        return _converse2d_filter(weight, bias, scale, height, width, eps)


def _converse2d_filter(
    weight: Tensor, bias: Tensor, scale: int, height: int, width: int, eps: float
) -> Tensor:
    lam = regularizer(bias, eps)
    kh, kw = weight.shape[-2:]
    out_h, out_w = scale * height, scale * width
    _check_kernel_fits(weight, out_h, out_w)
    # the kernel's OTF: the kernel centred on the origin of the output grid
    k_re, k_im = _small_dft2(weight, (-(kh // 2), -(kw // 2)), out_h, out_w, onesided=True)
    if scale == 1:
        return _identity_scale_filter(k_re, k_im, lam)

    b, c = weight.shape[:2]
    half = out_w // 2 + 1
    power, (cross_re, cross_im) = _decimated_spectra(weight, scale, height, width)
    denominator = power + lam
    q_re, q_im = (1 - cross_re) / denominator, -cross_im / denominator
    # column v of the output half spectrum reads column v mod W of the input-size arrays
    cols = torch.arange(half, device=weight.device) % width
    q_re = q_re.index_select(-1, cols).unsqueeze(2)  # (B, C, 1, H, half)
    q_im = q_im.index_select(-1, cols).unsqueeze(2)
    k_re = k_re.view(b, c, scale, height, half)
    k_im = k_im.view(b, c, scale, height, half)
    box = _box_spectrum(scale, out_h, out_w, weight.dtype, weight.device)
    box = box.view(scale, height, half)
    g_re = k_re * q_re + k_im * q_im + box.real  # conj(K)·q + B
    g_im = k_re * q_im - k_im * q_re + box.imag
    return torch.complex(g_re, g_im).reshape(b, c, out_h, half)


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
    check_options(scale, padding, padding_mode, eps)
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
    check_options(scale, padding, padding_mode, eps)
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
