"""A multi-scale (U-shaped) blind denoiser: the heavy blocks at ½ and ¼ resolution.

A compute-efficient alternative to :class:`~conversenet.models.compact.CompactConverseDenoiser`,
whose blocks all work at one resolution. Here a 3×3 head convolution lifts the image to
``widths[0]`` features at full resolution; each further level halves the resolution with
a stride-2 2×2 convolution (a pixel unshuffle followed by a 1×1 convolution) and widens the
features to ``widths[i]``; the way back up doubles the resolution with
:func:`~conversenet.models.upsamplers.make_upsampler` (for ``operator="converse"`` a
:class:`~conversenet.operator.ConverseUpsample`, i.e. a depthwise Converse2D of scale 2)
and adds the features of the way down (skip connections). A 3×3 tail convolution,
initialised to zero, gives the noise estimate that is added to the input (global residual:
the untrained network is the identity).

A block at ¼ resolution costs 1/16 of the same block at full resolution per image pixel,
and sees a region 4× wider: for the same parameters, far fewer FLOPs per pixel and a far
larger receptive field than a single-resolution stack (``tools/model_table.py`` counts
them).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import Tensor, nn
from typing_extensions import Unpack

from ..checks import check_int
from .blocks import BlockOperator, BlockOptions, ResidualDenoiser, reflect_conv3x3
from .upsamplers import make_upsampler

__all__ = ["ConverseUNet"]


def _check_levels(widths: Sequence[int], num_blocks: Sequence[int]) -> tuple[list, list]:
    widths, num_blocks = list(widths), list(num_blocks)
    if len(widths) < 2 or len(widths) != len(num_blocks):
        raise ValueError(
            "widths and num_blocks need one entry per level (at least 2 levels), got "
            f"widths={widths}, num_blocks={num_blocks}"
        )
    for i, (width, blocks) in enumerate(zip(widths, num_blocks, strict=True)):
        check_int(f"widths[{i}]", width, minimum=1)
        check_int(f"num_blocks[{i}]", blocks, minimum=0)
    return widths, num_blocks


class ConverseUNet(ResidualDenoiser):
    """U-shaped blind denoiser on a chosen spatial operator, with a global residual.

    Level ``i`` works at :math:`2^{-i}` of the input resolution with ``widths[i]`` features
    and has ``num_blocks[i]`` blocks on the way down and, but for the deepest level, as
    many on the way up.

    Args:
        in_channels: image channels (1 for gray, 3 for RGB).
        widths: features per level, from full resolution down.
        num_blocks: blocks per level (:meth:`~conversenet.models.blocks.BlockOperator.block`).
        **block: the blocks' spatial operator (``operator``, ``kernel_size``, ...:
            :class:`~conversenet.models.BlockOptions`), else :attr:`block_defaults`.
            ``operator`` also chooses the upsamplers: ``converse`` (Converse2D blocks and
            Converse2D ×2 upsamplers), or the ``conv``/``convt`` controls (depthwise
            convolutions and nearest + conv / transposed-convolution upsamplers; same
            parameter count).

    Shape:
        - Input: :math:`(N, C, H, W)` noisy image in [0, 1], any size of at least
          :math:`4 \\cdot 2^{L-1}` (``L`` levels); sizes that are not a multiple of
          :math:`2^{L-1}` are reflect-padded and cropped back.
        - Output: :math:`(N, C, H, W)` denoised image (not clamped).
    """

    #: The blocks' spatial operator where no keyword changes it (eps 0.05 bounds every
    #: Converse2D's gain, as in the compact denoiser).
    block_defaults = BlockOperator(kernel_size=5, padding=4, eps=5e-2)

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128),
        num_blocks: Sequence[int] = (0, 2, 4),
        **block: Unpack[BlockOptions],
    ) -> None:
        super().__init__(block, in_channels)
        widths, num_blocks = _check_levels(widths, num_blocks)
        spatial = self.block_operator
        self.levels = len(widths)
        #: The downscaling of the deepest level (sizes are padded to a multiple of it).
        self.downscale = 2 ** (self.levels - 1)
        pairs = list(pairwise(widths))
        self.head = reflect_conv3x3(in_channels, widths[0])
        self.encoders = nn.ModuleList(
            spatial.blocks(w, n) for w, n in zip(widths, num_blocks, strict=True)
        )
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 2, stride=2) for a, b in pairs)
        self.ups = nn.ModuleList(make_upsampler(spatial.operator, b, a, 2) for a, b in pairs)
        self.decoders = nn.ModuleList(
            spatial.blocks(w, n) for w, n in zip(widths, num_blocks[:-1], strict=False)
        )
        self.tail = reflect_conv3x3(widths[0], in_channels, zero=True)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, levels={self.levels}"

    @property
    def min_side(self) -> int:
        """Four pixels at the deepest level."""
        return 4 * self.downscale

    def residual(self, y: Tensor) -> Tensor:
        y = self.head(y)
        skips = []
        for level, encoder in enumerate(self.encoders):
            y = encoder(y)
            if level < len(self.downs):
                skips.append(y)
                y = self.downs[level](y)
        for level in reversed(range(len(self.ups))):
            y = self.decoders[level](self.ups[level](y) + skips[level])
        return self.tail(y)
