r"""The forward model of the reverse convolution as a deepinv-style linear physics.

:class:`ConvDownsample` holds a kernel and a scale and offers the forward operator
:math:`A` (``A``), its adjoint (``A_adjoint``) and the proximal operator of the data
term (``prox_l2``), so that plug-and-play and unrolled solvers written against
deepinv's ``LinearPhysics`` interface run on it. The proximal operator

.. math::

    \operatorname{prox}_{\gamma}(z) = \arg\min_x \tfrac12\|Ax - y\|^2
        + \tfrac{1}{2\gamma}\|x - z\|^2

is, multiplying by 2, :math:`\arg\min_x \|Ax - y\|^2 + \gamma^{-1}\|x - z\|^2`: the
reverse convolution with :math:`\lambda = 1/\gamma` and :math:`X_0 = z`, solved in closed
form (:func:`~conversenet.operator.solver.reverse_conv`, circular boundaries, no padding).
Its optimality condition, :math:`A^\top(Ax - y) + (x - z)/\gamma = 0`, is what the tests
check.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..checks import check_real
from .checks import check_scale, check_tensor
from .forward_model import conv_downsample, conv_downsample_adjoint
from .solver import reverse_conv

__all__ = ["ConvDownsample"]


class ConvDownsample(nn.Module):
    r"""Circular depthwise convolution with a kernel, then every :math:`s`-th sample:
    :math:`A x = (x \otimes K)\!\downarrow_s`, with its adjoint and proximal operator.

    Args:
        kernel: :math:`(1, C, *k)` (shared by the batch) or :math:`(N, C, *k)` (one set per
            sample), 1 to 3 spatial dimensions; kept as a buffer.
        scale: integer :math:`s \ge 1`.

    Shape:
        - ``A``: :math:`(N, C, s n_1, ..., s n_d) \to (N, C, n_1, ..., n_d)`;
          ``A_adjoint`` the reverse; ``prox_l2(z, y, gamma)``: z at the resolution of
          :math:`x`, y at that of :math:`Ax`, output at that of :math:`x`.

    Example:
        >>> physics = ConvDownsample(torch.full((1, 3, 3, 3), 1 / 9), scale=2)
        >>> x = torch.rand(1, 3, 16, 16)
        >>> y = physics.A(x)
        >>> physics.prox_l2(physics.A_adjoint(y), y, gamma=10.0).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, kernel: Tensor, scale: int = 1) -> None:
        super().__init__()
        check_tensor("kernel", kernel)
        if not 3 <= kernel.dim() <= 5:
            raise ValueError(
                f"kernel must have shape (1 or N, C, *k) with 1 to 3 spatial dimensions, "
                f"got {tuple(kernel.shape)}"
            )
        self.scale = check_scale(scale)
        self.register_buffer("kernel", kernel)

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.kernel.shape)}, scale={self.scale}"

    def A(self, x: Tensor) -> Tensor:
        """:math:`A x` (:func:`~conversenet.operator.forward_model.conv_downsample`)."""
        return conv_downsample(x, self.kernel, self.scale)

    def A_adjoint(self, y: Tensor) -> Tensor:
        """:math:`A^\\top y`
        (:func:`~conversenet.operator.forward_model.conv_downsample_adjoint`)."""
        return conv_downsample_adjoint(y, self.kernel, self.scale)

    def prox_l2(self, z: Tensor, y: Tensor, gamma: float | Tensor) -> Tensor:
        r""":math:`\arg\min_x \frac12\|Ax - y\|^2 + \frac{1}{2\gamma}\|x - z\|^2`: the
        reverse convolution of ``y`` with :math:`\lambda = 1/\gamma` and :math:`X_0 = z`.

        ``gamma``: a number > 0, or a tensor of the shapes λ takes,
        :math:`(1 \text{ or } N, C, 1, ...)`.
        """
        if isinstance(gamma, Tensor):
            lam = check_tensor("gamma", gamma).reciprocal()
        elif check_real("gamma", gamma) > 0:
            lam = 1.0 / gamma
        else:
            raise ValueError(f"gamma must be > 0, got {gamma}")
        return reverse_conv(y, self.kernel, lam, self.scale, 0, "circular", z)

    def forward(self, x: Tensor) -> Tensor:
        """:math:`A x` (noiseless measurements)."""
        return self.A(x)
