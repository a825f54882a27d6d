"""Blind deblurring: ConverseNet and its plain-convolution control ConvNet."""

from __future__ import annotations

from torch import Tensor, nn

from .blocks import check_operator, make_block

__all__ = ["BlockStack", "ConvNet", "ConverseNet"]


class BlockStack(nn.Module):
    """``num_blocks`` blocks in a row, held in ``m_body`` (checkpoint names ``m_body.<i>``).

    Args:
        operator: ``converse``, ``conv`` or ``convt``.
        channels, num_blocks: width and depth.
        kernel_size, padding, padding_mode, eps: of the spatial operator.
        alpha: use the blocks with learnable residual scales (``alpha1``, ``alpha2``).

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    def __init__(
        self,
        operator: str,
        channels: int = 64,
        num_blocks: int = 7,
        kernel_size: int = 3,
        padding: int = 2,
        padding_mode: str = "circular",
        eps: float = 1e-5,
        alpha: bool = False,
    ) -> None:
        super().__init__()
        check_operator(operator)
        if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 1:
            raise ValueError(f"num_blocks must be an int >= 1, got {num_blocks!r}")
        self.m_body = nn.Sequential(
            *(
                make_block(operator, channels, kernel_size, padding, padding_mode, eps, alpha)
                for _ in range(num_blocks)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.m_body(x)


class _IteratedNet(nn.Module):
    operator = "converse"

    def __init__(
        self,
        in_channels: int,
        num_features: int,
        num_blocks: int,
        num_iterations: int,
        kernel_size: int,
        padding: int,
        padding_mode: str,
        eps: float,
    ) -> None:
        super().__init__()
        if (
            isinstance(num_iterations, bool)
            or not isinstance(num_iterations, int)
            or num_iterations < 1
        ):
            raise ValueError(f"num_iterations must be an int >= 1, got {num_iterations!r}")
        self.num_iterations = num_iterations
        self.p = BlockStack(
            self.operator, num_features, num_blocks, kernel_size, padding, padding_mode, eps
        )
        self.conv1 = nn.Conv2d(in_channels, num_features, 1)
        self.conv2 = nn.Conv2d(num_features, in_channels, 1)

    def extra_repr(self) -> str:
        return f"num_iterations={self.num_iterations}"

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        for _ in range(self.num_iterations):
            x = self.p(x)
        return self.conv2(x)


class ConverseNet(_IteratedNet):
    """ConverseNet for blind deblurring.

    1×1 conv (C→64); the same stack of 7 Converse blocks (kernel 3, padding 2, circular)
    applied ``num_iterations`` = 5 times with shared weights (``p.m_body``); 1×1 conv
    (64→C). The published RGB checkpoint (``conversenet.pth``) uses the defaults
    (243,267 parameters). The output is the restored image itself.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    operator = "converse"

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
    ) -> None:
        super().__init__(
            in_channels,
            num_features,
            num_blocks,
            num_iterations,
            kernel_size,
            padding,
            padding_mode,
            eps,
        )


class ConvNet(_IteratedNet):
    """ConvNet, the control of :class:`ConverseNet`: the same network with every Converse2D
    replaced by a depthwise 3×3 :class:`~torch.nn.Conv2d` (padding 1, circular). Same
    parameter count and module names.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    operator = "conv"

    def __init__(
        self,
        in_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 7,
        num_iterations: int = 5,
        kernel_size: int = 3,
        padding_mode: str = "circular",
    ) -> None:
        super().__init__(
            in_channels,
            num_features,
            num_blocks,
            num_iterations,
            kernel_size,
            0,
            padding_mode,
            0.0,
        )
