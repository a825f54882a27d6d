r"""The exact spatial path of the reverse convolution, for kernels no larger than the scale.

Row :math:`i` of :math:`A` reads :math:`X` on the block :math:`s\,i + D`,
:math:`D = \prod_j [c_j - k_j + 1,\ c_j]`, with the weights :math:`K[c - d]`. When every
:math:`k_j \le s` the blocks of different rows are disjoint (also across the circular wrap
of the padded grid: two positions of different blocks differ by
:math:`s(i - i') + (d - d')` with :math:`|d_j - d'_j| < s`), so
:math:`AA^\top = \|K\|^2 I` and

.. math::

    X^\star = X_0 + A^\top\,\frac{y - A X_0}{\|K\|^2 + \lambda},

exact and without any FFT: an independent rank-one problem per block
(:func:`solve_blocks`). The blocks need not line up with the :math:`s^d` cells of the
nearest upsampling (``k = 3, s = 3``: :math:`D = \{-1, 0, 1\}` straddles two cells) and
they wrap around the padded grid; the general path follows them. They do line up when
every :math:`k_j \le 2` (:math:`D \subseteq [0, k_j - 1]`, :func:`cells_align`); with the
paper's :math:`X_0` (or zero) each output cell then depends on its own input pixel only,
:math:`X^\star = \operatorname{nearest}_s(y) \cdot M` for the :math:`s^d` pattern
:math:`M = 1 + \check K\,(1 - \sum K)/(\|K\|^2 + \lambda)` (:math:`\check K` the flipped
kernel in the corner of the cell; :math:`M = \check K/(\|K\|^2+\lambda)` for
``x0="zero"``), and padding does not change the cropped result, so none is done
(:func:`solve_cells`). The ×2 upsamplers of Converse-SRResNet (``k = 2, s = 2``) take that
path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

from .forward_model import convolve_downsample, nearest_upsample, upsample_correlate

__all__ = ["spatial_path_applies"]


def spatial_path_applies(kernel_sizes: Sequence[int], scale: int) -> bool:
    """Whether the blocks of the least-squares problem decouple (every kernel side
    ``<= scale``), so that the spatial path is exact."""
    return all(k <= scale for k in kernel_sizes)


def cells_align(kernel_sizes: Sequence[int]) -> bool:
    """Whether every block lies inside one s^d cell of the nearest upsampling."""
    return all(k <= 2 for k in kernel_sizes)


def _spatial_sum(t: Tensor) -> Tensor:
    return t.sum(dim=tuple(range(2, t.dim())), keepdim=True)


def _cells(y: Tensor, pattern: Tensor) -> Tensor:
    """Every input pixel times an s^d pattern: (N, C, *n) x (B, C, *[s]*d) -> (N, C, *s·n)."""
    n, c, *sizes = y.shape
    s = pattern.shape[-1]
    y_view = y.reshape(n, c, *(d for size in sizes for d in (size, 1)))
    p_view = pattern.reshape(pattern.shape[0], c, *(d for _ in sizes for d in (1, s)))
    out = y_view * p_view
    return out.reshape(out.shape[0], c, *(s * size for size in sizes))


def solve_cells(x: Tensor, kernel: Tensor, lam: Tensor, scale: int, nearest_x0: bool) -> Tensor:
    """The aligned spatial path on the unpadded input: X* = nearest(x) · M."""
    flipped = kernel.flip(tuple(range(2, kernel.dim())))
    pads: list[int] = []
    for k in reversed(kernel.shape[2:]):
        pads += [0, scale - k]
    corner = F.pad(flipped, pads)  # K[c - d] at d = 0 .. k - 1 of every axis
    norm = _spatial_sum(kernel.square()) + lam
    if not nearest_x0:
        return _cells(x, corner / norm)
    return _cells(x, 1 + corner * ((1 - _spatial_sum(kernel)) / norm))


def solve_blocks(y: Tensor, kernel: Tensor, lam: Tensor, scale: int, x0) -> Tensor:
    """The general spatial path on the padded grid: X0 + Aᵀ (y − A X0) / (‖K‖² + λ)."""
    norm = _spatial_sum(kernel.square()) + lam
    if isinstance(x0, str):  # "zero"
        return upsample_correlate(y / norm, kernel, scale)
    if x0 is None:
        x0 = nearest_upsample(y, scale)
    residual = (y - convolve_downsample(x0, kernel, scale)) / norm
    return x0 + upsample_correlate(residual, kernel, scale)
