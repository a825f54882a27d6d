"""ConverseUpsample: a channel-changing upsampler built on the depthwise Converse2D.

A drop-in for the ``nn.ConvTranspose2d(stride=s)`` or ``conv + nn.PixelShuffle(s)``
upsamplers of decoders and detection necks: a 1×1 convolution adapts the channels at the
input resolution, a depthwise :class:`~conversenet.operator.layers.Converse2D` upsamples
every channel by ``scale`` (computed in float32, also under autocast), and a 1×1 convolution
mixes the channels at the output resolution. Its kernels are kept summing to one, which
removes, exactly, what would leak into the s-periodic (checkerboard) frequencies.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..checks import check_int
from .checks import check_scale
from .layers import Converse2D

__all__ = ["ConverseUpsample", "SumToOne"]


class SumToOne(nn.Module):
    r"""Parametrisation projecting depthwise kernels onto :math:`\sum K = 1`: the excess
    of the sum is subtracted from every tap alike (no division, so no instability)."""

    def forward(self, weight: Tensor) -> Tensor:
        taps = math.prod(weight.shape[2:])
        return weight - (weight.sum(dim=tuple(range(2, weight.dim())), keepdim=True) - 1) / taps


class ConverseUpsample(nn.Module):
    r"""Upsampling by an integer factor with a depthwise reverse convolution.

    ``proj_in`` (1×1 conv, ``in_channels → out_channels``) → ``converse``
    (:class:`~conversenet.operator.layers.Converse2D` on ``out_channels``, ``scale``,
    ``kernel_size``, ``padding``, ``padding_mode``, ``eps``) → ``proj_out`` (1×1 conv,
    ``out_channels → out_channels``).

    The reverse convolution solves, per channel,
    :math:`\min_X \|y - (X\otimes K)\downarrow_s\|^2 + \lambda\|X - X_0\|^2`. Its output
    at the :math:`s`-periodic frequencies :math:`\omega_p` (where transposed convolutions
    draw their checkerboards) only receives the mean of its input:
    :math:`\hat X(\omega_p) = \hat y(0)\,\operatorname{conj}(\hat K(\omega_p))\,
    (1 - \sum K) / (\overline{|\hat K|^2}(0) + \lambda)`. With ``normalize_kernel``
    (default) the kernels are kept on :math:`\sum K = 1` (:class:`SumToOne`), so that term
    is zero: no checkerboard of a flat input, whatever was learned. The default
    ``kernel_size = 2 * scale`` makes the blocks of the problem overlap (spectral path,
    cached at inference); ``kernel_size <= scale`` gives the exact spatial path (the
    ×2 upsamplers of Converse-SRResNet, ``kernel_size=2, normalize_kernel=False``), where
    a kernel of at most two taps per axis summing to one would make the stage plain
    nearest upsampling.

    The depthwise stage runs in float32 with autocast disabled (half-precision inputs are
    converted, and its result is converted back to their dtype); the two 1×1 convolutions
    follow autocast like any convolution.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        scale: integer upsampling factor :math:`s \ge 1`.
        kernel_size: side of the reverse-convolution kernels (default: ``2 * scale``).
        padding, padding_mode, eps: of the :class:`~conversenet.operator.layers.Converse2D`.
        bias: whether the 1×1 convolutions have a bias.
        normalize_kernel: keep the kernels summing to one (a parametrisation of
            ``converse.weight``; the raw values are
            ``converse.parametrizations.weight.original``).

    Shape:
        - Input: :math:`(N, C_{in}, H, W)`
        - Output: :math:`(N, C_{out}, sH, sW)`

    Example:
        >>> up = ConverseUpsample(64, 32, scale=2)  # like nn.ConvTranspose2d(64, 32, 4, 2, 1)
        >>> up(torch.rand(1, 64, 20, 20)).shape
        torch.Size([1, 32, 40, 40])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale: int,
        kernel_size: int | None = None,
        padding: int = 2,
        padding_mode: str = "replicate",
        eps: float = 1e-3,
        bias: bool = True,
        normalize_kernel: bool = True,
        *,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.out_channels = check_int("out_channels", out_channels, minimum=1)
        self.scale = check_scale(scale)
        kernel_size = 2 * scale if kernel_size is None else kernel_size
        factory = {"device": device, "dtype": dtype}
        self.normalize_kernel = bool(normalize_kernel)
        self.proj_in = nn.Conv2d(in_channels, out_channels, 1, bias=bias, **factory)
        self.converse = Converse2D(
            out_channels, out_channels, kernel_size, scale, padding, padding_mode, eps
        ).to(device=device)
        if self.normalize_kernel:
            parametrize.register_parametrization(self.converse, "weight", SumToOne())
        self.proj_out = nn.Conv2d(out_channels, out_channels, 1, bias=bias, **factory)

    def forward(self, x: Tensor) -> Tensor:
        features = self.proj_in(x)
        with torch.autocast(features.device.type, enabled=False):
            wide = features if features.dtype == torch.float64 else features.float()
            up = self.converse(wide).to(features.dtype)
        return self.proj_out(up)
