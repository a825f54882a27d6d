"""Denoisers: the classic DnCNN and Converse-DnCNN with its Conv-/ConvT- controls."""

from __future__ import annotations

from torch import Tensor, nn

from .blocks import make_block

__all__ = ["ConvDnCNN", "ConvTDnCNN", "ConverseDnCNN", "DnCNN"]


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


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
        _check_positive(in_channels=in_channels, num_features=num_features, depth=depth)
        if depth < 3:
            raise ValueError(f"depth must be >= 3, got {depth}")
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


class _BlockDnCNN(nn.Module):
    """1×1 head conv, ``num_blocks`` blocks around one spatial operator, 1×1 tail conv.

    The network maps the noisy image to the clean one directly (no global skip).
    """

    operator = "converse"

    def __init__(
        self,
        in_channels: int,
        num_features: int,
        num_blocks: int,
        kernel_size: int,
        padding: int,
        padding_mode: str,
        eps: float,
    ) -> None:
        super().__init__()
        _check_positive(in_channels=in_channels, num_features=num_features, num_blocks=num_blocks)
        self.m_head = nn.Sequential(nn.Conv2d(in_channels, num_features, 1))
        self.m_body = nn.Sequential(
            *(
                make_block(self.operator, num_features, kernel_size, padding, padding_mode, eps)
                for _ in range(num_blocks)
            )
        )
        self.m_tail = nn.Sequential(nn.Conv2d(num_features, in_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.m_tail(self.m_body(self.m_head(x)))


class ConverseDnCNN(_BlockDnCNN):
    """Converse-DnCNN: 1×1 conv (C→64), 20 :class:`~conversenet.layers.ConverseBlock`
    (kernel 7, padding 6, circular), 1×1 conv (64→C).

    The published gray σ=25 checkpoint (``converse_dncnn.pth``) uses these defaults and
    holds 796,353 values; the paper's 734,913 is the same network with ``kernel_size=5``.
    The output is the denoised image itself.

    Args:
        in_channels: image channels.
        num_features: block width.
        num_blocks: number of Converse blocks.
        kernel_size, padding, padding_mode, eps: of every Converse2D.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    operator = "converse"

    def __init__(
        self,
        in_channels: int = 1,
        num_features: int = 64,
        num_blocks: int = 20,
        kernel_size: int = 7,
        padding: int = 6,
        padding_mode: str = "circular",
        eps: float = 1e-5,
    ) -> None:
        super().__init__(
            in_channels, num_features, num_blocks, kernel_size, padding, padding_mode, eps
        )


class ConvDnCNN(_BlockDnCNN):
    """Conv-DnCNN, the control of :class:`ConverseDnCNN`: every Converse2D replaced by a
    depthwise :class:`torch.nn.Conv2d` of the same (odd) kernel size, padded by
    :math:`(k-1)/2` in ``padding_mode``. Same parameter count as Converse-DnCNN.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    operator = "conv"

    def __init__(
        self,
        in_channels: int = 1,
        num_features: int = 64,
        num_blocks: int = 20,
        kernel_size: int = 7,
        padding_mode: str = "circular",
    ) -> None:
        super().__init__(in_channels, num_features, num_blocks, kernel_size, 0, padding_mode, 0.0)


class ConvTDnCNN(_BlockDnCNN):
    """ConvT-DnCNN, the control of :class:`ConverseDnCNN`: every Converse2D replaced by a
    depthwise :class:`torch.nn.ConvTranspose2d` of the same (odd) kernel size, stride 1,
    padding :math:`(k-1)/2` so that the size is kept (zero borders: PyTorch's transposed
    convolution has no other mode). Same parameter count as Converse-DnCNN.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    operator = "convt"

    def __init__(
        self,
        in_channels: int = 1,
        num_features: int = 64,
        num_blocks: int = 20,
        kernel_size: int = 7,
    ) -> None:
        super().__init__(in_channels, num_features, num_blocks, kernel_size, 0, "constant", 0.0)
