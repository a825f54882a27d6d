"""Building blocks shared by the model zoo: blocks around a chosen spatial operator, the
depthwise convolutions of the controls, and the SRResNet residual block.

A *control* block reproduces the layout of :class:`~conversenet.layers.ConverseBlock`
exactly (same sub-module names, same parameter count) with the Converse2D layer swapped
for a depthwise :class:`torch.nn.Conv2d` or :class:`torch.nn.ConvTranspose2d` of the same
kernel size. They are the "Conv-" and "ConvT-" baselines of the paper's ablations.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn
from torch.nn import functional as F

from ..checks import check_choice, check_int
from ..functional import PADDING_MODES
from ..layers import ConverseBlock, ConverseBlockAlpha, TwoBranchBlock
from ..upsample import ConverseUpsample

__all__ = [
    "OPERATORS",
    "NearestConvUpsample",
    "ResidualBlock",
    "check_operator",
    "convt_upsampler",
    "depthwise_conv",
    "make_block",
    "make_upsampler",
]

#: Spatial operators a block can be built around: Converse2D, or the depthwise
#: (transposed) convolution of the Conv-/ConvT- controls.
OPERATORS = ("converse", "conv", "convt")


def check_operator(operator: str) -> str:
    """``operator`` if it is one of :data:`OPERATORS`."""
    return check_choice("operator", operator, OPERATORS)


def depthwise_conv(
    channels: int, kernel_size: int, padding_mode: str = "replicate", transposed: bool = False
) -> nn.Module:
    """A size-preserving depthwise (transposed) convolution with bias.

    Its parameters, weight :math:`(C, 1, k, k)` and bias :math:`(C,)`, number exactly as
    those of a :class:`~conversenet.layers.Converse2D` with the same ``kernel_size``.

    * ``transposed=False``: :class:`torch.nn.Conv2d` with padding :math:`(k-1)/2` in
      ``padding_mode`` (``constant`` means zeros).
    * ``transposed=True``: :class:`torch.nn.ConvTranspose2d`, stride 1, padding
      :math:`(k-1)/2`: its output size is :math:`H - 1 - 2p + k = H`. PyTorch transposed
      convolutions only pad with zeros, so ``padding_mode`` is not used.

    The kernel size must be odd so that the output keeps the input size.
    """
    if check_int("kernel_size", kernel_size) < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"the Conv/ConvT control blocks need an odd kernel_size to keep the spatial "
            f"size, got {kernel_size}"
        )
    pad = (kernel_size - 1) // 2
    if transposed:
        return nn.ConvTranspose2d(channels, channels, kernel_size, 1, pad, groups=channels)
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    mode = "zeros" if padding_mode == "constant" else padding_mode
    return nn.Conv2d(channels, channels, kernel_size, 1, pad, groups=channels, padding_mode=mode)


def make_block(
    operator: str,
    channels: int,
    kernel_size: int,
    padding: int,
    padding_mode: str,
    eps: float = 1e-5,
    alpha: bool = False,
) -> nn.Module:
    """One block around ``operator``: a :class:`~conversenet.layers.ConverseBlock` (or
    :class:`~conversenet.layers.ConverseBlockAlpha` with ``alpha``) for ``converse``, the
    same :class:`~conversenet.layers.TwoBranchBlock` around :func:`depthwise_conv` for
    ``conv`` and ``convt``.

    ``padding`` and ``eps`` only concern Converse2D; the control blocks pad by
    :math:`(k-1)/2`, which keeps the spatial size.
    """
    if check_operator(operator) == "converse":
        cls = ConverseBlockAlpha if alpha else ConverseBlock
        return cls(channels, kernel_size, padding, padding_mode, eps)
    transposed = operator == "convt"
    return TwoBranchBlock(
        channels,
        lambda c: depthwise_conv(c, kernel_size, padding_mode, transposed),
        residual_scales=alpha,
    )


class ResidualBlock(nn.Module):
    """SRResNet residual block without batch norm: ``x + conv2(relu(conv1(x)))``, 3×3 convs.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


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

    * ``converse``: :class:`~conversenet.upsample.ConverseUpsample` (depthwise Converse2D,
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
