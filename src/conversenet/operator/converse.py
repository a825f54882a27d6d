r"""Converse2D and its 1-D and 3-D forms as pure functions: the paper's parameterisation
of the reverse convolution.

For every channel ``c`` with kernel :math:`K`, scale :math:`s` and regulariser
:math:`\lambda = \sigma(b - 9) + \varepsilon`, Converse2D returns

.. math::

    X^\star = \arg\min_X \|y - (X \otimes K)\!\downarrow_s\|^2 + \lambda \|X - X_0\|^2,

with :math:`X_0` the nearest-neighbour upsampling of :math:`y`, solved in closed form
under circular boundary conditions on the padded input: it is
:func:`~conversenet.operator.solver.reverse_conv` with that λ and the default
:math:`X_0`. Because :math:`X_0` is built from :math:`y`, the solution is a fixed spectral
filter :math:`G` of the spectrum of :math:`y` (:mod:`~conversenet.operator.spectral`):
one FFT at the input resolution, one product with :math:`G` and one inverse real FFT at
the output resolution. :math:`G` depends only on the parameters and the padded size, so
layers cache it for inference (:func:`converse_filter`); kernels no larger than the scale
take the exact spatial path instead.

:func:`converse1d`, :func:`converse2d`, :func:`converse3d` and the reference
:func:`converse2d_literal` share one signature and differ in the number of spatial
dimensions (and the algorithm, for the last).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .checks import check_converse_tensors, check_options, regularizer
from .literal import reverse_conv_literal
from .solver import FilterMaker, solve
from .spectral import spectral_filter

__all__ = [
    "converse1d",
    "converse2d",
    "converse2d_filter",
    "converse2d_literal",
    "converse3d",
    "converse_filter",
    "converse_forward",
]


def converse_filter(
    weight: Tensor, bias: Tensor, scale: int, sizes: Sequence[int], eps: float
) -> Tensor:
    r"""Spectral filter :math:`G` of the paper's operator for a padded input of ``sizes``:
    :func:`~conversenet.operator.spectral.spectral_filter` with
    :math:`\lambda = \sigma(b - 9) + \varepsilon`, computed in the dtype of ``weight`` even
    under autocast (which would run its small products and convolutions in half precision).

    Shape:
        - weight: :math:`(B, C, *k)` (:math:`B = 1` for a layer, or one kernel set per
          sample); bias: :math:`(1, C, 1, ...)`.
        - output: complex :math:`(B, C, s n_1, ..., \lfloor s n_d/2 \rfloor + 1)`.
    """
    with torch.autocast(weight.device.type, enabled=False):
        return spectral_filter(weight, regularizer(bias, eps), scale, sizes)


def converse2d_filter(
    weight: Tensor, bias: Tensor, scale: int, height: int, width: int, eps: float
) -> Tensor:
    r""":func:`converse_filter` of a padded height×width input: the half spectrum, complex
    :math:`(B, C, sH, \lfloor sW/2 \rfloor + 1)` (real and imaginary parts stacked on axis
    2 in the export-friendly formulation)."""
    return converse_filter(weight, bias, scale, (height, width), eps)


def converse_forward(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    scale: int,
    padding: int,
    padding_mode: str,
    eps: float,
    ndim: int,
    make_filter: FilterMaker | None = None,
) -> Tensor:
    """The paper's parameterisation (λ = sigmoid(bias − 9) + eps, the nearest upsampling
    as X0) on :func:`~conversenet.operator.solver.solve`: the body of
    ``converse1d/2d/3d`` and of the layers; ``make_filter(kernel, *padded_sizes)``, when
    given, supplies the spectral filter (a layer's cache)."""
    check_converse_tensors(x, weight, bias, ndim)

    def lam(dtype: torch.dtype) -> Tensor:  # (not needed where a cached filter is used)
        return regularizer(bias.to(dtype), eps)

    return solve(x, weight, lam, scale, padding, padding_mode, None, "auto", make_filter)


def _paper_form(name: str, ndim: int, literal: bool, doc: str) -> Callable[..., Tensor]:
    """One public function of the paper's parameterisation: the shared signature and
    checks, in ``ndim`` dimensions, by the fast operator or the literal formula."""

    def form(
        x: Tensor,
        weight: Tensor,
        bias: Tensor,
        scale: int = 1,
        padding: int = 2,
        padding_mode: str = "circular",
        eps: float = 1e-5,
    ) -> Tensor:
        check_options(scale, padding, padding_mode, eps)
        if not literal:
            return converse_forward(x, weight, bias, scale, padding, padding_mode, eps, ndim)
        check_converse_tensors(x, weight, bias, ndim)
        lam = regularizer(bias, eps)
        return reverse_conv_literal(x, weight, lam, scale, padding, padding_mode)

    form.__name__ = form.__qualname__ = name
    form.__doc__ = doc
    return form


converse2d = _paper_form(
    "converse2d",
    2,
    False,
    r"""Reverse convolution of ``x`` by depthwise kernels ``weight``.

    Solves, per channel, :math:`\min_X \|y - (X\otimes K)\downarrow_s\|^2 +
    \lambda\|X - X_0\|^2` in closed form (see the module docstring), where ``y`` is
    ``x`` padded by ``padding`` with ``padding_mode`` and ``λ = sigmoid(bias - 9) + eps``:
    ``reverse_conv(x, weight, regularizer(bias, eps), scale, padding, padding_mode)``.
    Kernels no larger than ``scale`` take the exact spatial path (no FFT).

    Args:
        x: input, :math:`(N, C, H, W)`, floating point. float16/bfloat16 are computed in
            float32 and returned in the input dtype.
        weight: kernels, :math:`(1, C, k_H, k_W)`.
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
    """,
)

converse1d = _paper_form(
    "converse1d",
    1,
    False,
    r"""Converse2D over the last dimension of a signal: the reverse convolution with
    :math:`\lambda = \sigma(b - 9) + \varepsilon` and the paper's :math:`X_0`.

    Shape:
        - x: :math:`(N, C, L)`; weight: :math:`(1, C, k)`; bias: :math:`(1, C, 1)`.
        - output: :math:`(N, C, sL)`.

    Example:
        >>> converse1d(torch.rand(2, 4, 50), torch.full((1, 4, 5), 0.2), torch.zeros(1, 4, 1),
        ...            scale=2).shape
        torch.Size([2, 4, 100])
    """,
)

converse3d = _paper_form(
    "converse3d",
    3,
    False,
    r"""Converse2D over the last three dimensions (volumes, video): the reverse
    convolution with :math:`\lambda = \sigma(b - 9) + \varepsilon` and the paper's
    :math:`X_0`.

    Shape:
        - x: :math:`(N, C, D, H, W)`; weight: :math:`(1, C, k, k, k)`; bias:
          :math:`(1, C, 1, 1, 1)`.
        - output: :math:`(N, C, sD, sH, sW)`.

    Example:
        >>> w = torch.full((1, 2, 3, 3, 3), 1 / 27)
        >>> converse3d(torch.rand(1, 2, 4, 8, 8), w, torch.zeros(1, 2, 1, 1, 1)).shape
        torch.Size([1, 2, 4, 8, 8])
    """,
)

converse2d_literal = _paper_form(
    "converse2d_literal",
    2,
    True,
    r"""The paper's closed-form solution, computed step by step at the output resolution
    (:func:`~conversenet.operator.literal.reverse_conv_literal` with
    :math:`\lambda = \sigma(b - 9) + \varepsilon`).

    Slow (full complex FFTs of the zero-upsampled input, the filter rebuilt every call);
    it exists so the fast path can be checked and benchmarked against it.
    Same arguments and shapes as :func:`converse2d`.
    """,
)
