"""Building blocks shared by the model zoo: the paper's two-branch block around a chosen
spatial operator (:class:`ConverseBlock` around Converse2D), the depthwise convolutions of
the controls, and the SRResNet residual block.

A *control* block reproduces the layout of :class:`ConverseBlock`
exactly (same sub-module names, same parameter count) with the Converse2D layer swapped
for a depthwise :class:`torch.nn.Conv2d` or :class:`torch.nn.ConvTranspose2d` of the same
kernel size. They are the "Conv-" and "ConvT-" baselines of the paper's ablations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..checks import check_choice, check_int
from ..operator import PADDING_MODES, Converse2D
from ..operator.checks import tracks_grad
from ..operator.fft import is_tracing

__all__ = [
    "OPERATORS",
    "ConverseBlock",
    "ConverseBlockAlpha",
    "LayerNorm2d",
    "ResidualBlock",
    "TwoBranchBlock",
    "check_operator",
    "depthwise_conv",
    "make_block",
]

#: Spatial operators a block can be built around: Converse2D, or the depthwise
#: (transposed) convolution of the Conv-/ConvT- controls.
OPERATORS = ("converse", "conv", "convt")


def check_operator(operator: str) -> str:
    """``operator`` if it is one of :data:`OPERATORS`."""
    return check_choice("operator", operator, OPERATORS)


def depthwise_conv(
    channels: int, kernel_size: int, padding_mode: str = "replicate", transposed: bool = False
) -> nn.Module:
    """A size-preserving depthwise (transposed) convolution with bias.

    Its parameters, weight :math:`(C, 1, k, k)` and bias :math:`(C,)`, number exactly as
    those of a :class:`~conversenet.operator.layers.Converse2D` with the same ``kernel_size``.

    * ``transposed=False``: :class:`torch.nn.Conv2d` with padding :math:`(k-1)/2` in
      ``padding_mode`` (``constant`` means zeros).
    * ``transposed=True``: :class:`torch.nn.ConvTranspose2d`, stride 1, padding
      :math:`(k-1)/2`: its output size is :math:`H - 1 - 2p + k = H`. PyTorch transposed
      convolutions only pad with zeros, so ``padding_mode`` is not used.

    The kernel size must be odd so that the output keeps the input size.
    """
    if check_int("kernel_size", kernel_size) < 1 or kernel_size % 2 == 0:
        raise ValueError(
            f"the Conv/ConvT control blocks need an odd kernel_size to keep the spatial "
            f"size, got {kernel_size}"
        )
    pad = (kernel_size - 1) // 2
    if transposed:
        return nn.ConvTranspose2d(channels, channels, kernel_size, 1, pad, groups=channels)
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    mode = "zeros" if padding_mode == "constant" else padding_mode
    return nn.Conv2d(channels, channels, kernel_size, 1, pad, groups=channels, padding_mode=mode)


def make_block(
    operator: str,
    channels: int,
    kernel_size: int,
    padding: int,
    padding_mode: str,
    eps: float = 1e-5,
    alpha: bool = False,
) -> nn.Module:
    """One block around ``operator``: a :class:`ConverseBlock` (or
    :class:`ConverseBlockAlpha` with ``alpha``) for ``converse``, the
    same :class:`TwoBranchBlock` around :func:`depthwise_conv` for
    ``conv`` and ``convt``.

    ``padding`` and ``eps`` only concern Converse2D; the control blocks pad by
    :math:`(k-1)/2`, which keeps the spatial size.
    """
    if check_operator(operator) == "converse":
        cls = ConverseBlockAlpha if alpha else ConverseBlock
        return cls(channels, kernel_size, padding, padding_mode, eps)
    transposed = operator == "convt"
    return TwoBranchBlock(
        channels,
        lambda c: depthwise_conv(c, kernel_size, padding_mode, transposed),
        residual_scales=alpha,
    )


class ResidualBlock(nn.Module):
    """SRResNet residual block without batch norm: ``x + conv2(relu(conv1(x)))``, 3×3 convs.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


# ---------------------------------------------------------------------------------------
# the paper's two-branch block
# ---------------------------------------------------------------------------------------
def _is_pointwise(conv: nn.Conv2d) -> bool:
    return conv.kernel_size == (1, 1) and conv.groups == 1 and conv.padding in ((0, 0), "valid")


def _pointwise(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """A 1×1 convolution as a matrix product: ``weight`` (C', C) on (N, C, H, W). A
    channels-last ``x`` gives a channels-last result, as the product (NHW, C)·(C, C'):
    with the pixels as the long side of the product, about twice as fast on the CPU."""
    n, _, h, w = x.shape
    if _channels_last(x):
        flat = x.permute(0, 2, 3, 1).reshape(n * h * w, x.shape[1])  # a view, if uncropped
        out = flat @ weight.t() if bias is None else torch.addmm(bias, flat, weight.t())
        return out.view(n, h, w, weight.shape[0]).permute(0, 3, 1, 2)
    flat = x.reshape(n, x.shape[1], h * w)
    if n == 1 and bias is not None:
        out = torch.addmm(bias[:, None], weight, flat[0])[None]
    else:
        out = torch.matmul(weight, flat)
        if bias is not None:
            out.add_(bias[:, None])
    return out.view(n, weight.shape[0], h, w)


def _channels_last(x: Tensor) -> bool:
    """Whether ``x`` (N, C, H, W) keeps its channels innermost (and is not also NCHW)."""
    return x.dim() == 4 and x.stride(1) == 1 and x.shape[1] > 1 and not x.is_contiguous()


def _dense(x: Tensor) -> bool:
    return x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channel axis of an (N, C, H, W) tensor.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps:g}"

    def normalize(self, x: Tensor) -> Tensor:
        """(x − mean) / std over the channels, without the affine part (a new tensor)."""
        if _channels_last(x):  # the channels are the innermost axis: one plain layer norm
            return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], eps=self.eps).permute(
                0, 3, 1, 2
            )
        # Two plain means: torch.var_mean over a strided channel axis is several times slower.
        centred = x - x.mean(dim=1, keepdim=True)
        if tracks_grad(centred) or is_tracing():  # a trace unrolls the loop below
            inv_std = torch.rsqrt(centred.square().mean(dim=1, keepdim=True) + self.eps)
            return centred * inv_std
        # Outside autograd, in place, and the variance summed channel by channel into one
        # (N, 1, H, W) map: no squared copy of x (268 MB at 64×1024²), and faster than a
        # reduction over the strided channel axis (torch.linalg.vector_norm: ten times
        # slower, 6.9 against 0.5 ms on 64×256²; square().mean(): 81 against 7 ms on
        # 64×1024², where the copy is fresh memory).
        var = centred[:, :1].square()
        for c in range(1, centred.shape[1]):
            channel = centred[:, c : c + 1]
            var.addcmul_(channel, channel)
        return centred.mul_(var.div_(x.shape[1]).add_(self.eps).rsqrt_())

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(
            self.bias[:, None, None], self.weight[:, None, None], self.normalize(x)
        )


class TwoBranchBlock(nn.Module):
    """The block layout of the paper around any size-preserving spatial operator.

    ``conv1``: LayerNorm → 1×1 conv (C→2C) → GELU → ``make_spatial(2C)`` → GELU → 1×1 conv
    (2C→C); ``conv2``: LayerNorm → 1×1 conv (C→2C) → GELU → 1×1 conv (2C→C).
    ``x = x + a1·conv1(x); x = x + a2·conv2(x)``, where ``a1``, ``a2`` are 1 or, with
    ``residual_scales``, learnable per-channel factors ``alpha1``, ``alpha2`` of shape
    (1, C, 1, 1) initialised to 0 (the block starts as the identity).

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    def __init__(
        self,
        channels: int,
        make_spatial: Callable[[int], nn.Module],
        residual_scales: bool = False,
    ) -> None:
        super().__init__()
        self.residual_scales = bool(residual_scales)
        if self.residual_scales:
            self.alpha1 = nn.Parameter(torch.zeros(1, channels, 1, 1))
            self.alpha2 = nn.Parameter(torch.zeros(1, channels, 1, 1))
        hidden = 2 * channels
        self.conv1 = nn.Sequential(
            LayerNorm2d(channels),
            nn.Conv2d(channels, hidden, 1),
            nn.GELU(),
            make_spatial(hidden),  # built here, so parameters are drawn in module order
            nn.GELU(),
            nn.Conv2d(hidden, channels, 1),
        )
        self.conv2 = nn.Sequential(
            LayerNorm2d(channels),
            nn.Conv2d(channels, hidden, 1),
            nn.GELU(),
            nn.Conv2d(hidden, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if not tracks_grad(x, *self.parameters()):
            return self._forward_inference(x)
        if self.residual_scales:
            x = x + self.alpha1 * self.conv1(x)
            return x + self.alpha2 * self.conv2(x)
        x = x + self.conv1(x)
        return x + self.conv2(x)

    def _forward_inference(self, x: Tensor) -> Tensor:
        """The same result with less memory and memory traffic: LayerNorm's affine folded
        into the following 1×1 convolution (W·(γx̂ + β) + b = (Wγ)·x̂ + (Wβ + b)), the 1×1
        convolutions as matrix products (no layout reorders or workspace), GELU in place,
        intermediates freed as soon as they are used. On the CPU the features are kept
        channels-last (the result too): the 1×1 convolutions and the layer norm run about
        twice as fast, the operator's transforms as fast (docs/performance.md)."""
        if x.device.type == "cpu" and x.dim() == 4 and not is_tracing():
            x = x.contiguous(memory_format=torch.channels_last)
        scales = (self.alpha1, self.alpha2) if self.residual_scales else (None, None)
        for branch, scale in zip((self.conv1, self.conv2), scales, strict=True):
            norm, first, *rest = branch
            weight = first.weight[:, :, 0, 0] * norm.weight
            h = _pointwise(
                norm.normalize(x), weight, first.bias + first.weight[:, :, 0, 0] @ norm.bias
            )
            for layer in rest:
                if isinstance(layer, nn.GELU) and layer.approximate == "none" and _dense(h):
                    h = torch.ops.aten.gelu_(h)
                elif isinstance(layer, nn.Conv2d) and _is_pointwise(layer):
                    h = _pointwise(h, layer.weight[:, :, 0, 0], layer.bias)
                else:
                    h = layer(h)
            if scale is not None:
                h.mul_(scale)
            x = h.add_(x)
        return x


class ConverseBlock(TwoBranchBlock):
    """Transformer-like block around Converse2D, with two residual branches
    (:class:`TwoBranchBlock` with a Converse2D of 2C channels as its spatial operator).

    Args:
        channels: number of channels :math:`C`.
        kernel_size, padding, padding_mode, eps: passed to :class:`Converse2D`.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: same.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        padding: int = 2,
        padding_mode: str = "replicate",
        eps: float = 1e-5,
    ) -> None:
        super().__init__(
            channels,
            lambda c: Converse2D(c, c, kernel_size, 1, padding, padding_mode, eps),
            residual_scales=isinstance(self, ConverseBlockAlpha),
        )


class ConverseBlockAlpha(ConverseBlock):
    """:class:`ConverseBlock` whose residual branches are scaled by learnable per-channel
    factors ``alpha1``, ``alpha2`` of shape (1, C, 1, 1), initialised to 0 (the block
    starts as the identity)."""
