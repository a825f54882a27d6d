"""Building blocks shared by the model zoo: the control blocks and the residual block.

The *control* blocks reproduce the layout of :class:`~conversenet.layers.ConverseBlock`
exactly (same sub-module names, same parameter count) with the Converse2D layer swapped
for a depthwise :class:`torch.nn.Conv2d` or :class:`torch.nn.ConvTranspose2d` of the same
kernel size. They are the "Conv-" and "ConvT-" baselines of the paper's ablations.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from ..layers import ConverseBlock, ConverseBlockAlpha, TwoBranchBlock

__all__ = [
    "OPERATORS",
    "DepthwiseConvBlock",
    "DepthwiseConvBlockAlpha",
    "ResidualBlock",
    "make_block",
]

#: Spatial operators a block can be built around.
OPERATORS = ("converse", "conv", "convt")

_CONV_PADDING_MODES = {"circular": "circular", "replicate": "replicate", "reflect": "reflect"}


def check_operator(operator: str) -> None:
    if operator not in OPERATORS:
        raise ValueError(f"operator must be one of {OPERATORS}, got {operator!r}")


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
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int):
        raise TypeError(f"kernel_size must be an int, got {type(kernel_size).__name__}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"the Conv/ConvT control blocks need an odd kernel_size to keep the spatial "
            f"size, got {kernel_size}"
        )
    pad = (kernel_size - 1) // 2
    if transposed:
        return nn.ConvTranspose2d(channels, channels, kernel_size, 1, pad, groups=channels)
    mode = _CONV_PADDING_MODES.get(padding_mode, "zeros")
    if padding_mode not in (*_CONV_PADDING_MODES, "constant"):
        raise ValueError(
            "padding_mode must be one of ('circular', 'replicate', 'reflect', 'constant'), "
            f"got {padding_mode!r}"
        )
    return nn.Conv2d(channels, channels, kernel_size, 1, pad, groups=channels, padding_mode=mode)


class DepthwiseConvBlock(TwoBranchBlock):
    """:class:`~conversenet.layers.ConverseBlock` with a depthwise (transposed) convolution
    in place of Converse2D: the Conv-/ConvT- control block. Sub-module names and
    parameter count equal those of the Converse block.

    Args:
        channels: number of channels :math:`C`.
        kernel_size: odd side of the depthwise kernel.
        padding_mode: border handling of the convolution (ignored when ``transposed``).
        transposed: use :class:`torch.nn.ConvTranspose2d` (the ConvT control).

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        padding_mode: str = "replicate",
        transposed: bool = False,
    ) -> None:
        super().__init__(
            channels, lambda c: depthwise_conv(c, kernel_size, padding_mode, transposed)
        )


class DepthwiseConvBlockAlpha(DepthwiseConvBlock):
    """:class:`DepthwiseConvBlock` with learnable per-channel residual scales ``alpha1``,
    ``alpha2`` (1, C, 1, 1), initialised to 0, as in
    :class:`~conversenet.layers.ConverseBlockAlpha`."""

    residual_scales = True


def make_block(
    operator: str,
    channels: int,
    kernel_size: int,
    padding: int,
    padding_mode: str,
    eps: float = 1e-5,
    alpha: bool = False,
) -> nn.Module:
    """Build one block around ``operator`` (``converse``, ``conv`` or ``convt``).

    ``padding`` and ``eps`` only concern Converse2D; the control blocks pad by
    :math:`(k-1)/2`, which keeps the spatial size.
    """
    check_operator(operator)
    if operator == "converse":
        cls = ConverseBlockAlpha if alpha else ConverseBlock
        return cls(channels, kernel_size, padding, padding_mode, eps)
    cls = DepthwiseConvBlockAlpha if alpha else DepthwiseConvBlock
    return cls(channels, kernel_size, padding_mode, transposed=operator == "convt")


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
