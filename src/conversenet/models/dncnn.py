"""Denoisers: the classic DnCNN, and Converse-DnCNN with its Conv-/ConvT- controls."""

from __future__ import annotations

from torch import Tensor, nn
from typing_extensions import Unpack

from ..checks import check_int, check_positive_ints
from .blocks import BlockModel, BlockOperator, BlockOptions

__all__ = ["ConverseDnCNN", "DnCNN"]


class DnCNN(nn.Module):
    """DnCNN (Zhang et al., TIP 2017): a plain CNN that predicts the noise.

    ``depth`` 3×3 convolutions: conv+ReLU, ``depth - 2`` × (conv+BatchNorm+ReLU), conv;
    the output is ``x - model(x)`` (residual learning). With the defaults (gray,
    17 layers, 64 features, biases on every convolution, as in KAIR) it has 557,057
    parameters. The layer indices of ``model`` follow KAIR's ``DnCNN`` (``model.0``,
    ``model.2``, ``model.3`` …), so KAIR checkpoints with unmerged batch norm load.

    Args:
        in_channels: image channels (1 gray, 3 colour).
        num_features: width of the hidden layers.
        depth: number of convolution layers (>= 3).

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    def __init__(self, in_channels: int = 1, num_features: int = 64, depth: int = 17) -> None:
        super().__init__()
        check_positive_ints(in_channels=in_channels, num_features=num_features)
        check_int("depth", depth, minimum=3)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, num_features, 3, 1, 1),
            nn.ReLU(inplace=True),
        ]
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(num_features, num_features, 3, 1, 1),
                nn.BatchNorm2d(num_features, eps=1e-4),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(num_features, in_channels, 3, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x - self.model(x)


class ConverseDnCNN(BlockModel):
    """Converse-DnCNN and its controls: 1×1 conv (C→64), ``num_blocks`` blocks around one
    spatial operator, 1×1 conv (64→C). The network maps the noisy image to the clean one
    directly (no global skip).

    ``operator="converse"`` (Converse-DnCNN): :class:`~conversenet.models.blocks.ConverseBlock`
    with kernel 7, padding 6, circular. The published gray σ=25 checkpoint
    (``converse_dncnn.pth``) uses these defaults and holds 796,353 values; the paper's
    734,913 is the same network with ``kernel_size=5``. ``operator="conv"`` (Conv-DnCNN)
    and ``"convt"`` (ConvT-DnCNN): each Converse2D replaced by a depthwise
    :class:`~torch.nn.Conv2d` (padded by :math:`(k-1)/2` in ``padding_mode``) or
    :class:`~torch.nn.ConvTranspose2d` (stride 1, zero borders) of the same odd kernel
    size; same parameter count and names.

    Args:
        in_channels: image channels.
        num_features: block width.
        num_blocks: number of blocks.
        **block: the blocks' spatial operator (``operator``, ``kernel_size``, ...:
            :class:`~conversenet.models.BlockOptions`), else :attr:`block_defaults`.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    #: The blocks' spatial operator where no keyword changes it (the published model's).
    block_defaults = BlockOperator(kernel_size=7, padding=6, padding_mode="circular")

    def __init__(
        self,
        in_channels: int = 1,
        num_features: int = 64,
        num_blocks: int = 20,
        **block: Unpack[BlockOptions],
    ) -> None:
        super().__init__(block, in_channels, num_features, num_blocks)
        self.m_head = nn.Sequential(nn.Conv2d(in_channels, num_features, 1))
        self.m_body = self.block_operator.blocks(num_features, num_blocks)
        self.m_tail = nn.Sequential(nn.Conv2d(num_features, in_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.m_tail(self.m_body(self.m_head(x)))
