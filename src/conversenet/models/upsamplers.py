"""Channel-changing ×s upsamplers around a chosen spatial operator, with equal parameter
counts: Converse2D (:class:`~conversenet.operator.ConverseUpsample`), a depthwise
transposed convolution, or nearest upsampling followed by a depthwise convolution (the
controls of :class:`~conversenet.models.ConverseUNet` and the SRResNet family).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn
from torch.nn import functional as F

from ..operator import ConverseUpsample
from .blocks import check_operator

__all__ = ["NearestConvUpsample", "convt_upsampler", "make_upsampler"]


class NearestConvUpsample(nn.Conv2d):
    """Nearest-neighbour ×s upsampling followed by a depthwise k×k convolution (bias),
    with ``replicate`` padding split as :math:`\\lfloor (k-1)/2 \\rfloor` before and
    :math:`\\lceil (k-1)/2 \\rceil` after, so the size is exactly :math:`sH \\times sW`.

    The plain-convolution stand-in for a Converse2D upsampler: parameters ``weight``
    :math:`(C, 1, k, k)` and ``bias`` :math:`(C,)`, as many as Converse2D's.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: :math:`(N, C, sH, sW)`.
    """

    def __init__(self, channels: int, kernel_size: int = 2, scale: int = 2) -> None:
        super().__init__(channels, channels, kernel_size, groups=channels)
        self.scale = scale
        before = (kernel_size - 1) // 2
        self._pad = (before, kernel_size - 1 - before) * 2

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scale={self.scale}"

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=self.scale, mode="nearest")
        return super().forward(F.pad(x, self._pad, mode="replicate"))


def convt_upsampler(channels: int, kernel_size: int, scale: int) -> nn.ConvTranspose2d:
    """Depthwise transposed conv with stride ``scale`` whose output is exactly ×scale."""
    if kernel_size < scale or (kernel_size - scale) % 2:
        raise ValueError(
            "a ConvTranspose2d upsampler needs up_kernel_size >= scale with an even "
            f"difference, got up_kernel_size={kernel_size}, scale={scale}"
        )
    padding = (kernel_size - scale) // 2
    return nn.ConvTranspose2d(channels, channels, kernel_size, scale, padding, groups=channels)


def make_upsampler(operator: str, in_channels: int, out_channels: int, scale: int = 2) -> nn.Module:
    """A channel-changing ×``scale`` upsampler around ``operator``: 1×1 conv
    (``in_channels → out_channels``) → depthwise spatial upsampling with kernel
    ``2 * scale`` → 1×1 conv.

    * ``converse``: :class:`~conversenet.operator.ConverseUpsample` (depthwise Converse2D,
      kernels kept summing to one).
    * ``convt``: a depthwise :class:`~torch.nn.ConvTranspose2d` of stride ``scale``
      (:func:`convt_upsampler`).
    * ``conv``: nearest ×``scale`` then a depthwise convolution
      (:class:`NearestConvUpsample`).

    The three have the same parameter count and the module names ``proj_in``, the spatial
    stage (``converse`` or ``spatial``) and ``proj_out``.

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`; Output: :math:`(N, C_{out}, sH, sW)`.
    """
    if check_operator(operator) == "converse":
        return ConverseUpsample(in_channels, out_channels, scale)
    kernel_size = 2 * scale
    if operator == "convt":
        spatial = convt_upsampler(out_channels, kernel_size, scale)
    else:
        spatial = NearestConvUpsample(out_channels, kernel_size, scale)
    return nn.Sequential(
        OrderedDict(
            proj_in=nn.Conv2d(in_channels, out_channels, 1),
            spatial=spatial,
            proj_out=nn.Conv2d(out_channels, out_channels, 1),
        )
    )
