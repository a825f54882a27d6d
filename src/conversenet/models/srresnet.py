"""x2/x3/x4 super-resolution networks of the SRResNet family.

* :class:`MSRResNet` — the modified SRResNet of KAIR/BasicSR (residual blocks, pixel shuffle).
* :class:`ConverseSRResNet` — Converse-SRResNet: Converse blocks everywhere and Converse2D
  upsamplers; with ``operator="conv"`` or ``"convt"``, its Conv-/ConvT- controls.
* :class:`ConverseUpSRResNet` — MSRResNet whose pixel-shuffle upsamplers are replaced by
  3×3 conv + Converse2D (scale 2).

All of them add the bilinear upsampling of the input (``align_corners=False``) to the
network output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from torch import Tensor, nn
from torch.nn import functional as F
from typing_extensions import Unpack

from ..checks import check_choice, check_int
from ..operator import Converse2D
from .blocks import BlockModel, BlockOperator, BlockOptions, ResidualBlock
from .upsamplers import NearestConvUpsample, convt_upsampler

__all__ = [
    "ConverseSRResNet",
    "ConverseUpSRResNet",
    "MSRResNet",
    "NearestConvUpsample",
]

UPSCALES = (2, 3, 4)


def _stage_scales(upscale: int) -> tuple[int, ...]:
    """x4 is two x2 stages; x2 and x3 are a single stage."""
    check_choice("upscale", check_int("upscale", upscale), UPSCALES)
    return (2, 2) if upscale == 4 else (upscale,)


class _UpsamplingNet(nn.Module):
    """The layout of the SRResNet family: ``conv_first``, ``conv_body``, one (convolution,
    upsampler) pair per stage, ``conv_hres``, ``conv_last``, each followed by
    :meth:`activation` but the last, plus the bilinear upsampling of the input
    (``align_corners=False``)."""

    upscale: int
    #: The names of a stage's convolution and upsampler, followed by the stage number.
    stage_names: ClassVar[tuple[str, str]] = ("upconv", "up")

    def _add_stages(
        self,
        scales: tuple[int, ...],
        conv: Callable[[], nn.Module],
        upsampler: Callable[[int], nn.Module],
    ) -> None:
        """A convolution and an upsampler per stage (:func:`_stage_scales`), in this order."""
        conv_name, up_name = self.stage_names
        for i, scale in enumerate(scales, 1):
            setattr(self, f"{conv_name}{i}", conv())
            setattr(self, f"{up_name}{i}", upsampler(scale))

    def stages(self) -> list[tuple[nn.Module, nn.Module]]:
        """The (convolution, upsampler) pairs, in order."""
        conv_name, up_name = self.stage_names
        count = len(_stage_scales(self.upscale))
        return [
            (getattr(self, f"{conv_name}{i}"), getattr(self, f"{up_name}{i}"))
            for i in range(1, count + 1)
        ]

    def activation(self) -> nn.Module:
        """The activation after every layer but the last."""
        return self.gelu

    def forward(self, x: Tensor) -> Tensor:
        act = self.activation()
        feat = self.conv_body(act(self.conv_first(x)))
        for conv, up in self.stages():
            feat = act(up(conv(feat)))
        out = self.conv_last(act(self.conv_hres(feat)))
        skip = F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)
        return out + skip


class MSRResNet(_UpsamplingNet):
    """Modified SRResNet (KAIR/BasicSR ``MSRResNet``): 3×3 conv + LeakyReLU(0.1),
    ``num_blocks`` residual blocks (no batch norm), pixel-shuffle upsampling (conv to 4C
    + shuffle ×2, twice for x4; conv to s²C + shuffle ×s for x2/x3), 3×3 conv_hres,
    3×3 conv_last, plus the bilinear upsampled input. 1,517,571 parameters at x4.

    Args:
        in_channels, out_channels: image channels.
        num_features: width.
        num_blocks: residual blocks.
        upscale: 2, 3 or 4.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: :math:`(N, C_{out}, sH, sW)`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 16,
        upscale: int = 4,
    ) -> None:
        super().__init__()
        scales = _stage_scales(upscale)
        self.upscale = upscale
        nf = num_features
        self.conv_first = nn.Conv2d(in_channels, nf, 3, 1, 1)
        self.conv_body = nn.Sequential(*(ResidualBlock(nf) for _ in range(num_blocks)))
        self.upconv1 = nn.Conv2d(nf, nf * scales[0] ** 2, 3, 1, 1)
        if len(scales) == 2:
            self.upconv2 = nn.Conv2d(nf, nf * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(scales[0])
        self.conv_hres = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_channels, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.1, inplace=True)

    def stages(self) -> list[tuple[nn.Module, nn.Module]]:
        """``upconv1`` (and ``upconv2`` for x4), each followed by the pixel shuffle."""
        convs = [self.upconv1, self.upconv2] if self.upscale == 4 else [self.upconv1]
        return [(conv, self.pixel_shuffle) for conv in convs]

    def activation(self) -> nn.Module:
        return self.lrelu


class ConverseSRResNet(BlockModel, _UpsamplingNet):
    """Converse-SRResNet and its controls.

    1×1 conv_first (C→64) + GELU; ``num_blocks`` blocks (kernel 5, padding 4, replicate);
    per ×2 stage a block ``upconv`` then an upsampler ``up`` and GELU; block ``conv_hres``
    + GELU; 1×1 ``conv_last`` (64→C, no bias); plus the bilinear upsampled input.

    ``operator="converse"`` (Converse-SRResNet): Converse blocks and Converse2D upsamplers
    (kernel 2, scale 2, padding 2, ``padding_mode``, eps 1e-3); the published ×4
    checkpoint (``converse_srresnet.pth``) uses the defaults. ``operator="conv"``
    (Conv-SRResNet): depthwise :class:`~torch.nn.Conv2d` blocks and
    :class:`NearestConvUpsample` (nearest ×2 then a depthwise 2×2 conv).
    ``operator="convt"`` (ConvT-SRResNet): depthwise :class:`~torch.nn.ConvTranspose2d`
    blocks (stride 1) and depthwise transposed convolutions with kernel 2, stride 2 as
    upsamplers. The controls have the parameter count and module names of
    Converse-SRResNet. (Upstream publishes no code for the controls; this is our
    construction.)

    Args:
        in_channels, out_channels: image channels.
        num_features: width.
        num_blocks: blocks in the body.
        upscale: 2, 3 (one stage of that scale) or 4 (two ×2 stages).
        up_kernel_size, up_padding, up_eps: of the upsamplers (``up_padding`` and
            ``up_eps`` concern Converse2D only; the Converse2D upsamplers pad in the
            blocks' ``padding_mode``).
        **block: the blocks' spatial operator (``operator``, ``kernel_size``, ...:
            :class:`~conversenet.models.BlockOptions`), else :attr:`block_defaults`;
            ``operator`` also chooses the upsamplers.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: :math:`(N, C_{out}, sH, sW)`.
    """

    #: The blocks' spatial operator where no keyword changes it (the published model's).
    block_defaults = BlockOperator(kernel_size=5, padding=4, padding_mode="replicate")

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 16,
        upscale: int = 4,
        up_kernel_size: int = 2,
        up_padding: int = 2,
        up_eps: float = 1e-3,
        **block: Unpack[BlockOptions],
    ) -> None:
        super().__init__(block, in_channels, num_features, num_blocks, out_channels=out_channels)
        spatial = self.block_operator
        scales = _stage_scales(upscale)
        self.upscale = upscale
        nf = num_features

        def upsampler(scale: int) -> nn.Module:
            if spatial.operator == "converse":
                return Converse2D(
                    nf, nf, up_kernel_size, scale, up_padding, spatial.padding_mode, up_eps
                )
            if spatial.operator == "conv":
                return NearestConvUpsample(nf, up_kernel_size, scale)
            return convt_upsampler(nf, up_kernel_size, scale)

        self.conv_first = nn.Conv2d(in_channels, nf, 1)
        self.conv_body = spatial.blocks(nf, num_blocks)
        self._add_stages(scales, lambda: spatial.block(nf), upsampler)
        self.conv_hres = spatial.block(nf)
        self.conv_last = nn.Conv2d(nf, out_channels, 1, bias=False)
        self.gelu = nn.GELU()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, upscale={self.upscale}"


class ConverseUpSRResNet(_UpsamplingNet):
    """MSRResNet with Converse2D upsampling.

    3×3 conv_first + GELU, ``num_blocks`` residual blocks, then per stage a 3×3 conv
    (``conv1``/``conv2``) followed by a Converse2D upsampler (``reverse1``/``reverse2``,
    kernel 2, padding 2, circular, eps 1e-5 as upstream) and GELU, 3×3 conv_hres + GELU,
    3×3 conv_last, plus the bilinear upsampled input.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: :math:`(N, C_{out}, sH, sW)`.
    """

    stage_names = ("conv", "reverse")

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 16,
        upscale: int = 4,
        up_kernel_size: int = 2,
        up_padding: int = 2,
        up_padding_mode: str = "circular",
        up_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        scales = _stage_scales(upscale)
        self.upscale = upscale
        nf = num_features
        self.conv_first = nn.Conv2d(in_channels, nf, 3, 1, 1)
        self.conv_body = nn.Sequential(*(ResidualBlock(nf) for _ in range(num_blocks)))
        self._add_stages(
            scales,
            lambda: nn.Conv2d(nf, nf, 3, 1, 1),
            lambda s: Converse2D(nf, nf, up_kernel_size, s, up_padding, up_padding_mode, up_eps),
        )
        self.conv_hres = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_channels, 3, 1, 1)
        self.gelu = nn.GELU()
