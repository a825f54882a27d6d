"""A compact Converse denoiser: the project's own model, shipped with the package.

Built like Converse-DnCNN (a head convolution, a stack of :class:`ConverseBlock`, a tail
convolution) but much narrower and shallower. As in FFDNet, the image is first split into
its ``downscale``² polyphase sub-images (pixel unshuffle), so the blocks work at a
quarter of the pixels with a wider receptive field, and a pixel shuffle puts the result
back; a global residual connection makes the network predict the noise, and the tail
starts at zero so the untrained network is the identity. Trained blind (noise level uniform in
[0, 50] on the [0, 255] scale) on the 400 Train400 images with ``conversenet train
configs/compact_denoiser_blind.yaml``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor
from typing_extensions import Unpack

from .blocks import BlockOperator, BlockOptions, ResidualDenoiser, reflect_conv3x3

__all__ = ["CompactConverseDenoiser"]


class CompactConverseDenoiser(ResidualDenoiser):
    """Small blind Converse denoiser with a global residual connection.

    Args:
        in_channels: image channels (1 for gray, 3 for RGB).
        num_features: width of the feature stack.
        num_blocks: number of blocks (:class:`~conversenet.models.blocks.ConverseBlock`).
        downscale: pixel-unshuffle factor before the blocks (1: full resolution).
        **block: the blocks' spatial operator (``operator``, ``kernel_size``, ...:
            :class:`~conversenet.models.BlockOptions`), else :attr:`block_defaults`.

    Shape:
        - Input: :math:`(N, C, H, W)` noisy image in [0, 1], any size (odd sizes are
          reflect-padded to a multiple of ``downscale`` and cropped back).
        - Output: :math:`(N, C, H, W)` denoised image (not clamped).
    """

    #: The blocks' spatial operator where no keyword changes it. The paper's models use
    #: eps 1e-5; 0.05 bounds the gain of every Converse2D (λ ≥ 0.05) and made short CPU
    #: training converge markedly faster.
    block_defaults = BlockOperator(kernel_size=5, padding=4, eps=5e-2)

    def __init__(
        self,
        in_channels: int = 1,
        num_features: int = 48,
        num_blocks: int = 6,
        downscale: int = 2,
        **block: Unpack[BlockOptions],
    ) -> None:
        super().__init__(block, in_channels, num_features, num_blocks, downscale=downscale)
        self.downscale = downscale
        planes = in_channels * downscale * downscale
        self.m_head = reflect_conv3x3(planes, num_features)
        self.m_body = self.block_operator.blocks(num_features, num_blocks)
        self.m_tail = reflect_conv3x3(num_features, planes, zero=True)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, downscale={self.downscale}"

    def residual(self, y: Tensor) -> Tensor:
        s = self.downscale
        y = F.pixel_unshuffle(y, s) if s > 1 else y
        y = self.m_tail(self.m_body(self.m_head(y)))
        return F.pixel_shuffle(y, s) if s > 1 else y
