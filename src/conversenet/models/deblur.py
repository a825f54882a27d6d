"""Blind deblurring: ConverseNet (and, with a convolution as its operator, ConvNet)."""

from __future__ import annotations

from torch import Tensor, nn
from typing_extensions import Unpack

from .blocks import BlockModel, BlockOperator, BlockOptions

__all__ = ["ConverseNet", "prior_blocks"]


class ConverseNet(BlockModel):
    """ConverseNet for blind deblurring, and its control ConvNet.

    1×1 conv (C→64); the same stack of 7 blocks (kernel 3, padding 2, circular) applied
    ``num_iterations`` = 5 times with shared weights (``p.m_body``); 1×1 conv (64→C). The
    output is the restored image itself. ``operator="converse"`` (ConverseNet): Converse
    blocks; the published RGB checkpoint (``conversenet.pth``) uses the defaults (243,267
    parameters). ``operator="conv"`` (ConvNet): each Converse2D replaced by a depthwise 3×3
    :class:`~torch.nn.Conv2d` (padding 1, ``padding_mode``); same parameter count and names.

    Args:
        in_channels: image channels.
        num_features, num_blocks, num_iterations: width, depth, repetitions of the stack.
        **block: the blocks' spatial operator (``operator``, ``kernel_size``, ...:
            :class:`~conversenet.models.BlockOptions`), else :attr:`block_defaults`.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    #: The blocks' spatial operator where no keyword changes it (the published model's).
    block_defaults = BlockOperator(kernel_size=3, padding=2)

    def __init__(
        self,
        in_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 7,
        num_iterations: int = 5,
        **block: Unpack[BlockOptions],
    ) -> None:
        super().__init__(
            block, in_channels, num_features, num_blocks, num_iterations=num_iterations
        )
        self.num_iterations = num_iterations
        self.p = prior_blocks(self.block_operator.blocks(num_features, num_blocks))
        self.conv1 = nn.Conv2d(in_channels, num_features, 1)
        self.conv2 = nn.Conv2d(num_features, in_channels, 1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_iterations={self.num_iterations}"

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        for _ in range(self.num_iterations):
            x = self.p.m_body(x)
        return self.conv2(x)


def prior_blocks(blocks: nn.Sequential) -> nn.ModuleDict:
    """``blocks`` held as ``m_body``: the parameter names ``p.m_body.<i>`` of the published
    ConverseNet and Converse-USRNet checkpoints."""
    return nn.ModuleDict({"m_body": blocks})
