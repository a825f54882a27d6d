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

Beyond the paper (defined in :mod:`conversenet.reverse_conv`, re-exported here): the
operator parameterised by λ with per-sample kernels and an explicit :math:`X_0`
(:func:`reverse_conv`, of which :func:`converse2d` is the case
:math:`\lambda = \sigma(b - 9) + \varepsilon`), its forward model and adjoint
(:func:`conv_downsample`, :func:`conv_downsample_adjoint`), the 1-D and 3-D forms
(:func:`converse1d`, :func:`converse3d`), the exact spatial path for kernels no larger
than the scale, λ from a noise level (:func:`discrepancy_lambda`) and the literal formula
in any dimension (:func:`reverse_conv_literal`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .reverse_conv import (
    BIAS_SHIFT,
    METHODS,
    PADDING_MODES,
    X0_KINDS,
    apply_spectral_filter_nd,
    check_converse_tensors,
    check_hyperparameters,
    check_options,
    conv_downsample,
    conv_downsample_adjoint,
    converse1d,
    converse3d,
    converse_forward,
    discrepancy_lambda,
    regularizer,
    reverse_conv,
    reverse_conv_literal,
    spatial_path_applies,
    spectral_filter_nd,
)
from .spectral import (
    _block_mean,
    _otf,
    apply_converse2d_filter,
    autocast_off,
    export_friendly,
    is_export_friendly,
    pad_input,
    reverse_conv_filter,
)

__all__ = [
    "BIAS_SHIFT",
    "METHODS",
    "PADDING_MODES",
    "X0_KINDS",
    "apply_converse2d_filter",
    "apply_spectral_filter_nd",
    "check_hyperparameters",
    "check_options",
    "conv_downsample",
    "conv_downsample_adjoint",
    "converse1d",
    "converse2d",
    "converse2d_filter",
    "converse2d_literal",
    "converse3d",
    "discrepancy_lambda",
    "export_friendly",
    "is_export_friendly",
    "pad_input",
    "regularizer",
    "reverse_conv",
    "reverse_conv_filter",
    "reverse_conv_literal",
    "spatial_path_applies",
    "spectral_filter_nd",
]

FilterFn = Callable[[Tensor, Tensor, int, int], Tensor]


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
    with autocast_off(weight.device.type):
        return reverse_conv_filter(weight, regularizer(bias, eps), scale, height, width)


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
    eps: float,
) -> Tensor:
    """Shared body of :func:`converse2d` and the layer: :func:`reverse_conv`'s solver with
    λ = sigmoid(bias − 9) + eps and the paper's X0; ``get_filter(weight, bias, h, w)``
    supplies the spectral filter (the layer's cache) where the FFT path is taken."""

    def make_filter(kernel: Tensor, height: int, width: int) -> Tensor:
        return get_filter(kernel, bias.to(kernel.dtype), height, width)

    return converse_forward(x, weight, bias, scale, padding, padding_mode, eps, 2, make_filter)


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
    ``x`` padded by ``padding`` with ``padding_mode`` and ``λ = sigmoid(bias - 9) + eps``:
    ``reverse_conv(x, weight, regularizer(bias, eps), scale, padding, padding_mode)``.
    Kernels no larger than ``scale`` take the exact spatial path (no FFT).

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
        x, weight, bias, scale, padding, padding_mode, _default_filter(scale, eps), eps
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
    check_converse_tensors(x, weight, bias, 2)
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
