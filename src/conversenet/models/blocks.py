"""Building blocks shared by the model zoo: the paper's two-branch block around a chosen
spatial operator (:class:`ConverseBlock` around Converse2D), the depthwise convolutions of
the controls, the SRResNet residual block; :class:`BlockOperator`, the spatial operator
of a model family's blocks (the keywords :class:`BlockOptions` of every family), and the
bases of the families, :class:`BlockModel` and :class:`ResidualDenoiser`.

A *control* block reproduces the layout of :class:`ConverseBlock`
exactly (same sub-module names, same parameter count) with the Converse2D layer swapped
for a depthwise :class:`torch.nn.Conv2d` or :class:`torch.nn.ConvTranspose2d` of the same
kernel size. They are the "Conv-" and "ConvT-" baselines of the paper's ablations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, TypedDict

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..checks import check_choice, check_int, check_positive_ints
from ..operator import PADDING_MODES, Converse2D
from ..operator.checks import channels_innermost, check_hyperparameters, tracks_grad
from ..operator.fft import is_tracing

__all__ = [
    "OPERATORS",
    "BlockModel",
    "BlockOperator",
    "BlockOptions",
    "ConverseBlock",
    "ConverseBlockAlpha",
    "LayerNorm2d",
    "ResidualBlock",
    "TwoBranchBlock",
    "check_operator",
    "depthwise_conv",
    "make_block",
    "reflect_conv3x3",
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
    """One block around ``operator``: :meth:`BlockOperator.block` of
    ``BlockOperator(operator, kernel_size, padding, padding_mode, eps)``."""
    return BlockOperator(operator, kernel_size, padding, padding_mode, eps).block(channels, alpha)


class BlockOptions(TypedDict, total=False):
    """The keywords that set the spatial operator of a model family's blocks: the fields
    of :class:`BlockOperator`, each of which, left out, keeps the family's default (its
    ``block_defaults``)."""

    operator: str
    kernel_size: int
    padding: int
    padding_mode: str
    eps: float


@dataclass(frozen=True)
class BlockOperator:
    """The spatial operator of a model's blocks (checked), and the blocks built around it.

    A model family (:class:`BlockModel`) holds its default as ``block_defaults`` and takes
    the fields as keywords (:class:`BlockOptions`), e.g. ``ConverseDnCNN(kernel_size=5)``
    or ``ConverseSRResNet(operator="convt")``.

    Attributes:
        operator: ``converse`` (a :class:`ConverseBlock` around Converse2D), or the
            ``conv``/``convt`` controls (the same :class:`TwoBranchBlock` around a
            depthwise :class:`~torch.nn.Conv2d`/:class:`~torch.nn.ConvTranspose2d` of the
            same, odd, kernel size: :func:`depthwise_conv`).
        kernel_size: kernel side.
        padding: Converse2D's padding (the controls pad by :math:`(k-1)/2`, which keeps
            the spatial size).
        padding_mode: the boundary of the padding (``convt`` pads with zeros).
        eps: the floor of Converse2D's regulariser λ (Converse2D only).

    Example:
        >>> BlockOperator("conv", kernel_size=5).blocks(8, 2)(torch.rand(1, 8, 9, 9)).shape
        torch.Size([1, 8, 9, 9])
    """

    operator: str = "converse"
    kernel_size: int = 3
    padding: int = 2
    padding_mode: str = "circular"
    eps: float = 1e-5

    def __post_init__(self) -> None:
        check_operator(self.operator)
        check_hyperparameters(self.kernel_size, 1, self.padding, self.padding_mode, self.eps)

    def block(self, channels: int, alpha: bool = False) -> nn.Module:
        """One block of ``channels`` channels: a :class:`ConverseBlock` (or
        :class:`ConverseBlockAlpha` with ``alpha``) for ``converse``, the same
        :class:`TwoBranchBlock` (with residual scales if ``alpha``) around
        :func:`depthwise_conv` for ``conv`` and ``convt``."""
        if self.operator == "converse":
            cls = ConverseBlockAlpha if alpha else ConverseBlock
            return cls(channels, self.kernel_size, self.padding, self.padding_mode, self.eps)
        transposed = self.operator == "convt"
        return TwoBranchBlock(
            channels,
            lambda c: depthwise_conv(c, self.kernel_size, self.padding_mode, transposed),
            residual_scales=alpha,
        )

    def blocks(self, channels: int, count: int, alpha: bool = False) -> nn.Sequential:
        """``count`` blocks in a row (:meth:`block`)."""
        return nn.Sequential(*(self.block(channels, alpha) for _ in range(count)))

    def extra_repr(self) -> str:
        """The fields as keywords, for the ``extra_repr`` of a model."""
        return ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))


def _output_in_input_layout(module: nn.Module, args: tuple, output: Any) -> Any:
    """A model's output for an NCHW-contiguous input is NCHW-contiguous, though its blocks
    may have worked channels-last (one copy of the few output channels)."""
    x = args[0] if args else None
    if isinstance(x, Tensor) and isinstance(output, Tensor) and x.is_contiguous():
        return output.contiguous()
    return output


class BlockModel(nn.Module):
    """Base of the model families whose blocks share one spatial operator.

    A family sets its default operator as ``block_defaults``, takes the fields as
    ``**block: Unpack[BlockOptions]`` and calls ``super().__init__(block, in_channels,
    num_features, num_blocks, **sizes)``: the sizes it gives (its own in ``sizes``) are
    checked to be ints >= 1, and the default updated by the keywords is
    ``block_operator``, which builds the blocks.
    """

    #: The blocks' spatial operator where no keyword changes it (each family sets its own).
    block_defaults: ClassVar[BlockOperator] = BlockOperator()

    def __init__(
        self,
        block: Mapping[str, Any],
        in_channels: int,
        num_features: int | None = None,
        num_blocks: int | None = None,
        **sizes: int,
    ) -> None:
        super().__init__()
        trunk = {"num_features": num_features, "num_blocks": num_blocks}
        sizes = {name: size for name, size in trunk.items() if size is not None} | sizes
        check_positive_ints(in_channels=in_channels, **sizes)
        self.in_channels = in_channels
        names = [f.name for f in fields(BlockOperator)]
        unknown = sorted(set(block) - set(names))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument "
                f"{', '.join(map(repr, unknown))} (its block keywords are {', '.join(names)})"
            )
        self.block_operator = replace(self.block_defaults, **block)
        self.register_forward_hook(_output_in_input_layout)

    @property
    def operator(self) -> str:
        """The blocks' spatial operator: ``converse``, ``conv`` or ``convt``."""
        return self.block_operator.operator

    def extra_repr(self) -> str:
        return self.block_operator.extra_repr()


class ResidualDenoiser(BlockModel):
    """Base of the blind denoisers that add their output to their input (global residual).

    :meth:`forward` checks the images (N, ``in_channels``, H, W), at least ``min_side``
    pixels on each side, reflect-pads them at the bottom and right to multiples of
    ``downscale``, and adds :meth:`residual` of the padded images, cropped back, to the
    input. A subclass sets ``downscale`` and defines :meth:`residual`;
    its tail, a 3×3 convolution that starts at zero (:func:`reflect_conv3x3`), makes the
    untrained network the identity.
    """

    downscale: int

    @property
    def min_side(self) -> int:
        """The smallest image side the model takes."""
        return 1

    def residual(self, y: Tensor) -> Tensor:
        """What the model adds to the padded images ``y`` (minus its noise estimate): same
        shape."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected an input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if min(h, w) < self.min_side:
            side = self.min_side
            raise ValueError(
                f"{type(self).__name__} needs an image of at least {side}x{side} pixels, "
                f"got {h}x{w}"
            )
        pad_h, pad_w = (-h) % self.downscale, (-w) % self.downscale
        y = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else x
        return x + self.residual(y)[..., :h, :w]


def reflect_conv3x3(in_channels: int, out_channels: int, zero: bool = False) -> nn.Conv2d:
    """A size-preserving 3×3 convolution with reflect padding (the head and tail of the
    residual denoisers); with ``zero``, its weight and bias start at zero, so that a
    network that adds its output to the input starts as the identity."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect")
    if zero:
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    return conv


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


def _fused_linear():
    """oneDNN's linear with a fused activation (the op inductor uses on the CPU), or None
    where this build of PyTorch has no oneDNN."""
    try:
        return torch.ops.mkldnn._linear_pointwise if torch.backends.mkldnn.is_available() else None
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return None


_FUSED_LINEAR = _fused_linear()


def _pointwise(x: Tensor, weight: Tensor, bias: Tensor | None, gelu: bool = False) -> Tensor:
    """A 1×1 convolution as a matrix product: ``weight`` (C', C) on (N, C, H, W), then the
    exact GELU if ``gelu`` (in place). A channels-last ``x`` gives a channels-last result,
    as the product (NHW, C)·(C, C'): with the pixels as the long side of the product,
    about twice as fast on the CPU; there oneDNN's linear adds the bias and the GELU in
    the same pass (float32 CPU tensors)."""
    n, _, h, w = x.shape
    if channels_innermost(x):
        flat = x.permute(0, 2, 3, 1).reshape(n * h * w, x.shape[1])  # a view, if uncropped
        fusable = flat.device.type == "cpu" and flat.dtype == torch.float32
        if _FUSED_LINEAR is not None and bias is not None and fusable:
            activation = ("gelu", [None], "none") if gelu else ("none", [], "")
            out = _FUSED_LINEAR(flat, weight.contiguous(), bias, *activation)
            return out.view(n, h, w, weight.shape[0]).permute(0, 3, 1, 2)
        out = flat @ weight.t() if bias is None else torch.addmm(bias, flat, weight.t())
        out = out.view(n, h, w, weight.shape[0]).permute(0, 3, 1, 2)
    else:
        flat = x.reshape(n, x.shape[1], h * w)
        if n == 1 and bias is not None:
            out = torch.addmm(bias[:, None], weight, flat[0])[None]
        else:
            out = torch.matmul(weight, flat)
            if bias is not None:
                out.add_(bias[:, None])
        out = out.view(n, weight.shape[0], h, w)
    return torch.ops.aten.gelu_(out) if gelu else out


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
        if channels_innermost(x):  # the channels are the innermost axis: one plain layer norm
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
        intermediates freed as soon as they are used. Around Converse2D on the CPU the
        features are kept channels-last (the result too): the 1×1 convolutions and the
        layer norm run about twice as fast, the operator's transforms as fast; the depthwise
        convolutions of the controls are slower so, and keep the layout they are given
        (docs/performance.md)."""
        if (
            isinstance(self.conv1[3], Converse2D)
            and x.device.type == "cpu"
            and x.dim() == 4
            and not is_tracing()
        ):
            x = x.contiguous(memory_format=torch.channels_last)
        scales = (self.alpha1, self.alpha2) if self.residual_scales else (None, None)
        for branch, scale in zip((self.conv1, self.conv2), scales, strict=True):
            norm, first, *rest = branch
            weight = first.weight[:, :, 0, 0] * norm.weight
            bias = first.bias + first.weight[:, :, 0, 0] @ norm.bias
            gelu = isinstance(rest[0], nn.GELU) and rest[0].approximate == "none"
            h = _pointwise(norm.normalize(x), weight, bias, gelu=gelu)
            for layer in rest[1:] if gelu else rest:
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
