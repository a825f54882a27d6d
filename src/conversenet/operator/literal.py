r"""The reference algorithms: the paper's closed form computed step by step at the output
resolution, in any dimension (:func:`reverse_conv_literal`); ``converse2d_literal``
(:mod:`~conversenet.operator.converse`) is it with the paper's parameterisation.

.. math::

    X^\star = \mathcal F^{-1}\Big(\tfrac1\lambda\big(L - \operatorname{conj}(F_K)
    \operatorname{tile}_s\big[\operatorname{avg}_s(F_K L) /
    (\operatorname{avg}_s|F_K|^2 + \lambda)\big]\big)\Big),\quad
    L = \operatorname{conj}(F_K)\,\mathcal F(y\uparrow_s) + \lambda\,\mathcal F(X_0).

Full complex FFTs of the zero-upsampled input and of the padded kernel (``torch.fft``,
whatever the FFT engine), the filter rebuilt every call: slow, and it divides by λ (use
float64), but written independently of the fast operator, so that the tests and the
benchmarks can check it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .checks import check_fits, pad
from .forward_model import nearest_upsample
from .solver import check_problem, crop
from .spectral import block_mean, padded_otf

__all__ = ["reverse_conv_literal"]


def reverse_conv_literal(
    y: Tensor,
    kernel: Tensor,
    lam: Tensor | float,
    scale: int = 1,
    padding: int = 0,
    padding_mode: str = "circular",
    x0: Tensor | str | None = None,
) -> Tensor:
    r"""The paper's closed form, step by step at the output resolution, in any dimension
    (see the module docstring). Same arguments as
    :func:`~conversenet.operator.solver.reverse_conv`.

    Shape:
        - y: :math:`(N, C, n_1, ..., n_d)`; output: :math:`(N, C, s n_1, ..., s n_d)`.
    """
    lam = check_problem(y, kernel, lam, scale, padding, padding_mode, x0)
    s = scale
    yp = pad(y, padding, padding_mode)
    n, c, *sizes = yp.shape
    out = [s * size for size in sizes]
    check_fits(kernel.shape[2:], out, "padded output")
    dims = tuple(range(2, yp.dim()))
    y_up = yp.new_zeros(n, c, *out)
    y_up[(..., *(slice(None, None, s) for _ in sizes))] = yp  # s - 1 zeros after each sample
    if x0 is None:
        x0 = nearest_upsample(yp, s)
    elif isinstance(x0, str):
        x0 = torch.zeros_like(y_up)

    f_k = torch.fft.fftn(padded_otf(kernel, out), dim=dims)
    f_k_conj = torch.conj(f_k)
    rhs = f_k_conj * torch.fft.fftn(y_up, dim=dims) + lam * torch.fft.fftn(x0, dim=dims)
    numerator = block_mean(f_k * rhs, s)
    denominator = block_mean(torch.abs(f_k) ** 2, s) + lam
    correction = f_k_conj * (numerator / denominator).repeat(1, 1, *(s for _ in sizes))
    result = torch.real(torch.fft.ifftn((rhs - correction) / lam, dim=dims))
    return crop(result, padding * s)
