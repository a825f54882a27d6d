"""Blind deblurring: ConverseNet (and, with a convolution as its operator, ConvNet)."""

from __future__ import annotations

from torch import Tensor, nn

from ..checks import check_int
from .blocks import check_operator, make_block

__all__ = ["ConverseNet", "prior_blocks"]


class ConverseNet(nn.Module):
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
        kernel_size, padding, padding_mode, eps: of the spatial operator (``padding`` and
            ``eps`` concern Converse2D only).
        operator: the spatial operator, ``converse``, ``conv`` or ``convt``.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 7,
        num_iterations: int = 5,
        kernel_size: int = 3,
        padding: int = 2,
        padding_mode: str = "circular",
        eps: float = 1e-5,
        operator: str = "converse",
    ) -> None:
        super().__init__()
        self.operator = check_operator(operator)
        self.num_iterations = check_int("num_iterations", num_iterations, minimum=1)
        self.p = prior_blocks(
            operator, num_features, num_blocks, kernel_size, padding, padding_mode, eps
        )
        self.conv1 = nn.Conv2d(in_channels, num_features, 1)
        self.conv2 = nn.Conv2d(num_features, in_channels, 1)

    def extra_repr(self) -> str:
        return f"operator={self.operator!r}, num_iterations={self.num_iterations}"

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        for _ in range(self.num_iterations):
            x = self.p.m_body(x)
        return self.conv2(x)


def prior_blocks(
    operator: str,
    channels: int,
    num_blocks: int,
    kernel_size: int,
    padding: int,
    padding_mode: str,
    eps: float,
    alpha: bool = False,
) -> nn.ModuleDict:
    """``num_blocks`` blocks in a row (:func:`~conversenet.models.blocks.make_block`), held as
    ``m_body``: the parameter names ``p.m_body.<i>`` of the published ConverseNet and
    Converse-USRNet checkpoints."""
    check_int("num_blocks", num_blocks, minimum=1)
    blocks = (
        make_block(operator, channels, kernel_size, padding, padding_mode, eps, alpha)
        for _ in range(num_blocks)
    )
    return nn.ModuleDict({"m_body": nn.Sequential(*blocks)})
