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

from torch import Tensor, nn
from torch.nn import functional as F

from ..checks import check_choice, check_int
from ..operator import Converse2D
from .blocks import ResidualBlock, check_operator, make_block

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


def _upsampling_forward(
    net: nn.Module, x: Tensor, stages: list[tuple[nn.Module, nn.Module]], act: nn.Module
) -> Tensor:
    """The forward pass shared by the SRResNet family: first conv, body, one (conv,
    upsampler) pair per stage, conv_hres, conv_last, each followed by ``act`` but the last,
    plus the bilinear upsampling of the input (``align_corners=False``)."""
    feat = net.conv_body(act(net.conv_first(x)))
    for conv, up in stages:
        feat = act(up(conv(feat)))
    out = net.conv_last(act(net.conv_hres(feat)))
    skip = F.interpolate(x, scale_factor=net.upscale, mode="bilinear", align_corners=False)
    return out + skip


class MSRResNet(nn.Module):
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

    def forward(self, x: Tensor) -> Tensor:
        stages = [(self.upconv1, self.pixel_shuffle)]
        if self.upscale == 4:
            stages.append((self.upconv2, self.pixel_shuffle))
        return _upsampling_forward(self, x, stages, self.lrelu)


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


def _convt_upsampler(channels: int, kernel_size: int, scale: int) -> nn.ConvTranspose2d:
    """Depthwise transposed conv with stride ``scale`` whose output is exactly ×scale."""
    if kernel_size < scale or (kernel_size - scale) % 2:
        raise ValueError(
            "a ConvTranspose2d upsampler needs up_kernel_size >= scale with an even "
            f"difference, got up_kernel_size={kernel_size}, scale={scale}"
        )
    padding = (kernel_size - scale) // 2
    return nn.ConvTranspose2d(channels, channels, kernel_size, scale, padding, groups=channels)


class ConverseSRResNet(nn.Module):
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
        kernel_size, padding, padding_mode, eps: of the spatial operator inside the blocks
            (``padding_mode`` is also used by the Converse2D upsamplers; ``padding`` and
            ``eps`` concern Converse2D only).
        up_kernel_size, up_padding, up_eps: of the upsamplers (``up_padding`` and
            ``up_eps`` concern Converse2D only).
        operator: the spatial operator, ``converse``, ``conv`` or ``convt``.

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
        kernel_size: int = 5,
        padding: int = 4,
        padding_mode: str = "replicate",
        eps: float = 1e-5,
        up_kernel_size: int = 2,
        up_padding: int = 2,
        up_eps: float = 1e-3,
        operator: str = "converse",
    ) -> None:
        super().__init__()
        self.operator = check_operator(operator)
        scales = _stage_scales(upscale)
        self.upscale = upscale
        nf = num_features

        def block() -> nn.Module:
            return make_block(operator, nf, kernel_size, padding, padding_mode, eps)

        def upsampler(scale: int) -> nn.Module:
            if operator == "converse":
                return Converse2D(nf, nf, up_kernel_size, scale, up_padding, padding_mode, up_eps)
            if operator == "conv":
                return NearestConvUpsample(nf, up_kernel_size, scale)
            return _convt_upsampler(nf, up_kernel_size, scale)

        self.conv_first = nn.Conv2d(in_channels, nf, 1)
        self.conv_body = nn.Sequential(*(block() for _ in range(num_blocks)))
        self.upconv1 = block()
        self.up1 = upsampler(scales[0])
        if len(scales) == 2:
            self.upconv2 = block()
            self.up2 = upsampler(scales[1])
        self.conv_hres = block()
        self.conv_last = nn.Conv2d(nf, out_channels, 1, bias=False)
        self.gelu = nn.GELU()

    def extra_repr(self) -> str:
        return f"operator={self.operator!r}, upscale={self.upscale}"

    def forward(self, x: Tensor) -> Tensor:
        stages = [(self.upconv1, self.up1)]
        if self.upscale == 4:
            stages.append((self.upconv2, self.up2))
        return _upsampling_forward(self, x, stages, self.gelu)


class ConverseUpSRResNet(nn.Module):
    """MSRResNet with Converse2D upsampling.

    3×3 conv_first + GELU, ``num_blocks`` residual blocks, then per stage a 3×3 conv
    (``conv1``/``conv2``) followed by a Converse2D upsampler (``reverse1``/``reverse2``,
    kernel 2, padding 2, circular, eps 1e-5 as upstream) and GELU, 3×3 conv_hres + GELU,
    3×3 conv_last, plus the bilinear upsampled input.

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
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.reverse1 = Converse2D(
            nf, nf, up_kernel_size, scales[0], up_padding, up_padding_mode, up_eps
        )
        if len(scales) == 2:
            self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1)
            self.reverse2 = Converse2D(
                nf, nf, up_kernel_size, scales[1], up_padding, up_padding_mode, up_eps
            )
        self.conv_hres = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_channels, 3, 1, 1)
        self.gelu = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        stages = [(self.conv1, self.reverse1)]
        if self.upscale == 4:
            stages.append((self.conv2, self.reverse2))
        return _upsampling_forward(self, x, stages, self.gelu)
