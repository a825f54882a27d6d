r"""The forward model :math:`A` of the reverse convolution and its adjoint.

:math:`A` (:func:`conv_downsample`) is the circular depthwise convolution with the kernel
centred on its tap :math:`c = \lfloor k/2 \rfloor` on every axis,
:math:`(X \otimes K)(p) = \sum_r K[r]\, X(p - r + c)`, followed by keeping every
:math:`s`-th sample; :math:`A^\top` (:func:`conv_downsample_adjoint`) zero-upsamples by
:math:`s` and correlates circularly with the kernel. The reverse convolution solves
:math:`\min_X \|y - AX\|^2 + \lambda\|X - X_0\|^2`, by default with :math:`X_0` the
nearest upsampling of :math:`y` (:func:`nearest_upsample`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_fits, check_input, check_kernel, check_scale

__all__ = ["conv_downsample", "conv_downsample_adjoint"]

_CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSES = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _grouped(op, x: Tensor, kernel: Tensor, scale: int) -> Tensor:
    """A depthwise (transposed) convolution with one kernel set, or one per sample."""
    n, c = x.shape[:2]
    ks = kernel.shape[2:]
    weight = kernel.flip(tuple(range(2, kernel.dim())))
    if kernel.shape[0] == 1:
        return op(x, weight.reshape(c, 1, *ks), stride=scale, groups=c)
    out = op(
        x.reshape(1, n * c, *x.shape[2:]), weight.reshape(n * c, 1, *ks), stride=scale, groups=n * c
    )
    return out.view(n, c, *out.shape[2:])


def convolve_downsample(x: Tensor, kernel: Tensor, scale: int) -> Tensor:
    """:math:`A x` on checked arguments (``kernel`` in the dtype of ``x``)."""
    ks = kernel.shape[2:]
    pads: list[int] = []
    for k in reversed(ks):  # X(p - r + c) for taps r: k - 1 - c samples before, c after
        pads += [k - 1 - k // 2, k // 2]
    return _grouped(_CONVS[len(ks)], F.pad(x, pads, mode="circular"), kernel, scale)


def upsample_correlate(y: Tensor, kernel: Tensor, scale: int) -> Tensor:
    """:math:`A^\\top y` on checked arguments (``kernel`` in the dtype of ``y``)."""
    ks = kernel.shape[2:]
    sizes = [scale * n for n in y.shape[2:]]
    z = _grouped(_CONV_TRANSPOSES[len(ks)], y, kernel, scale)  # (n - 1) s + k per axis
    # the adjoint of the circular padding: fold position t onto t - (k - 1 - c) mod size
    pads: list[int] = []
    for size, length in zip(reversed(sizes), reversed(z.shape[2:]), strict=True):
        pads += [0, 2 * size - length]
    z = F.pad(z, pads)
    folded = z.reshape(*z.shape[:2], *(d for size in sizes for d in (2, size)))
    folded = folded.sum(dim=tuple(2 + 2 * i for i in range(len(sizes))))
    shifts = [-(k - 1 - k // 2) for k in ks]
    return torch.roll(folded, shifts=shifts, dims=tuple(range(2, 2 + len(ks))))


def nearest_upsample(y: Tensor, scale: int) -> Tensor:
    """Nearest-neighbour upsampling of every spatial axis by ``scale`` (exact copies): the
    paper's :math:`X_0`."""
    if scale == 1:
        return y
    n, c, *sizes = y.shape
    view = [n, c, *(d for size in sizes for d in (size, 1))]
    expanded = [n, c, *(d for size in sizes for d in (size, scale))]
    return y.reshape(view).expand(expanded).reshape(n, c, *(scale * size for size in sizes))


def _check_model_args(x: Tensor, kernel: Tensor, scale: int, name: str) -> None:
    ndim = check_input(name, x)
    check_scale(scale)
    check_kernel(kernel, x, ndim, name)


def conv_downsample(x: Tensor, kernel: Tensor, scale: int = 1) -> Tensor:
    r"""The forward model :math:`A` of the reverse convolution: circular depthwise
    convolution with the kernel centred as the operator centres it, then every
    :math:`s`-th sample.

    .. math::

        (A X)_i = \sum_r K[r]\, X\big((s\,i - r + c) \bmod sN\big),
        \qquad c = \lfloor k/2 \rfloor \text{ per axis.}

    :func:`~conversenet.operator.solver.reverse_conv` with :math:`\lambda \to 0` inverts it
    (for kernels whose transfer function has no zeros).

    Args:
        x: signal :math:`(N, C, sL)`, :math:`(N, C, sH, sW)` or :math:`(N, C, sD, sH, sW)`.
        kernel: :math:`(1, C, *k)` (shared) or :math:`(N, C, *k)` (one per sample), with
            the same number of spatial dimensions as ``x``, each side at most its size.
        scale: integer :math:`s \ge 1`; every spatial size of ``x`` must be a multiple.

    Shape:
        - x: :math:`(N, C, s n_1, ..., s n_d)`; output: :math:`(N, C, n_1, ..., n_d)`.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> conv_downsample(x, torch.full((1, 3, 3, 3), 1 / 9), 2).shape
        torch.Size([2, 3, 8, 8])
    """
    _check_model_args(x, kernel, scale, "x")
    sizes = x.shape[2:]
    if any(size % scale for size in sizes):
        raise ValueError(
            f"x's spatial size {'x'.join(map(str, sizes))} must be a multiple of scale {scale}"
        )
    check_fits(kernel.shape[2:], sizes, "input")
    if x.shape[0] == 0:
        return x.new_zeros(*x.shape[:2], *(size // scale for size in sizes))
    return convolve_downsample(x, kernel.to(x.dtype), scale)


def conv_downsample_adjoint(y: Tensor, kernel: Tensor, scale: int = 1) -> Tensor:
    r"""The adjoint :math:`A^\top` of :func:`conv_downsample`: zero-upsampling by
    :math:`s`, then circular correlation with the kernel (transposed convolution with the
    overhang folded back circularly), so that
    :math:`\langle A x, y\rangle = \langle x, A^\top y\rangle`.

    Shape:
        - y: :math:`(N, C, n_1, ..., n_d)`; kernel :math:`(1 \text{ or } N, C, *k)`;
          output: :math:`(N, C, s n_1, ..., s n_d)`.

    Example:
        >>> y = torch.rand(2, 3, 8, 8)
        >>> conv_downsample_adjoint(y, torch.full((1, 3, 3, 3), 1 / 9), 2).shape
        torch.Size([2, 3, 16, 16])
    """
    _check_model_args(y, kernel, scale, "y")
    sizes = [scale * n for n in y.shape[2:]]
    check_fits(kernel.shape[2:], sizes, "output")
    if y.shape[0] == 0 or any(n == 0 for n in sizes):
        return y.new_zeros(*y.shape[:2], *sizes)
    return upsample_correlate(y, kernel.to(y.dtype), scale)
