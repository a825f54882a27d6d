"""Layers built on the reverse-convolution operator: Converse2D and the Converse blocks."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from . import functional as CF
from .checks import check_int


def _tracks_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _is_tracing() -> bool:
    """Whether an exporter or compiler traces the model (Python loops get unrolled)."""
    return torch.compiler.is_compiling() or CF.is_export_friendly()


def _is_pointwise(conv: nn.Conv2d) -> bool:
    return conv.kernel_size == (1, 1) and conv.groups == 1 and conv.padding in ((0, 0), "valid")


def _pointwise(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """A 1×1 convolution as a matrix product: ``weight`` (C', C) on (N, C, H, W)."""
    n, _, h, w = x.shape
    flat = x.reshape(n, x.shape[1], h * w)
    if n == 1 and bias is not None:
        out = torch.addmm(bias[:, None], weight, flat[0])[None]
    else:
        out = torch.matmul(weight, flat)
        if bias is not None:
            out.add_(bias[:, None])
    return out.view(n, weight.shape[0], h, w)


__all__ = [
    "Converse2D",
    "ConverseBlock",
    "ConverseBlockAlpha",
    "ConverseNd",
    "LayerNorm2d",
    "TwoBranchBlock",
]


class ConverseNd(nn.Module):
    r"""Base of the Converse layers (:class:`Converse2D`, and ``Converse1d``/``Converse3d``
    in :mod:`conversenet.layers_nd`): the parameters, the checks and the inference filter
    cache, for ``ndim`` spatial dimensions (a class attribute of each subclass).

    Parameters ``weight`` :math:`(1, C, k, \dots, k)` (each kernel a softmax of a normal
    draw) and ``bias`` :math:`(1, C, 1, \dots, 1)` (zeros).
    """

    ndim: int = 2
    filter_cache_max_bytes: int = 256 * 2**20

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        scale: int = 1,
        padding: int = 2,
        padding_mode: str = "circular",
        eps: float = 1e-5,
        *,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        check_int("in_channels", in_channels, minimum=1)
        check_int("out_channels", out_channels, minimum=1)
        if in_channels != out_channels:
            raise ValueError(
                f"{type(self).__name__} is depthwise: out_channels must equal in_channels, "
                f"got in_channels={in_channels}, out_channels={out_channels}"
            )
        CF.check_hyperparameters(kernel_size, scale, padding, padding_mode, eps)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.scale = scale
        self.padding = padding
        self.padding_mode = padding_mode
        self.eps = float(eps)
        factory = {"device": device, "dtype": dtype}
        draw = torch.randn(1, in_channels, kernel_size**self.ndim, **factory)
        self.weight = nn.Parameter(
            torch.softmax(draw, dim=-1).view(1, in_channels, *(kernel_size,) * self.ndim)
        )
        self.bias = nn.Parameter(torch.zeros(1, in_channels, *(1,) * self.ndim, **factory))
        self._filter_cache: tuple[tuple, Tensor, Tensor, Tensor] | None = None
        self._filter_key_seen: tuple | None = None  # the key of the last filter built

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"scale={self.scale}, padding={self.padding}, padding_mode={self.padding_mode!r}, "
            f"eps={self.eps:g}"
        )

    def regularizer(self) -> Tensor:
        """Current λ per channel, shape (1, C, 1, ...)."""
        return CF.regularizer(self.bias, self.eps)

    def clear_filter_cache(self) -> None:
        """Drop the cached spectral filter (it is rebuilt on the next call)."""
        self._filter_cache = None
        self._filter_key_seen = None

    def _cacheable(self) -> bool:
        if _is_tracing():
            return False
        needs_graph = self.weight.requires_grad or self.bias.requires_grad
        return not (torch.is_grad_enabled() and needs_graph)

    def _build_filter(self, weight: Tensor, bias: Tensor, sizes: tuple[int, ...]) -> Tensor:
        lam = CF.regularizer(bias, self.eps)
        return CF.spectral_filter_nd(weight, lam, self.scale, sizes)

    def _filter(self, weight: Tensor, bias: Tensor, *sizes: int) -> Tensor:
        if not self._cacheable():
            self._filter_cache = None
            return self._build_filter(weight, bias, sizes)
        key = (
            *sizes,
            weight.dtype,
            self.weight.shape,
            self.weight.dtype,
            self.weight.device,
            self.bias.dtype,
            self.scale,
            self.eps,
            torch.is_inference_mode_enabled(),
        )
        cache = self._filter_cache
        # The parameters are compared by value with the copy taken when the filter was
        # built: that catches every change (in place, through ``.data``, load_state_dict,
        # optimiser steps) and costs O(C·k²), nothing next to the filter itself.
        if (
            cache is not None
            and cache[0] == key
            and torch.equal(cache[1], self.weight)
            and torch.equal(cache[2], self.bias)
        ):
            return cache[3]
        self._filter_cache = None  # free the stale filter before building a new one
        filt = self._build_filter(weight, bias, sizes)
        # Kept from the second filter of the same key on: a single call (one image) holds
        # no filter it will not reuse (at 512², 141 MB per layer of Converse-DnCNN).
        seen, self._filter_key_seen = self._filter_key_seen, key
        if seen == key and filt.numel() * filt.element_size() <= self.filter_cache_max_bytes:
            snapshot = (self.weight.detach().clone(), self.bias.detach().clone())
            self._filter_cache = (key, *snapshot, filt)
        return filt

    def _check_channels(self, x: Tensor) -> None:
        if isinstance(x, Tensor) and x.dim() == self.ndim + 2 and x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected an input with {self.in_channels} channels, got {x.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )

    def forward(self, x: Tensor) -> Tensor:
        self._check_channels(x)

        def make_filter(kernel: Tensor, *sizes: int) -> Tensor:
            return self._filter(kernel, self.bias.to(kernel.dtype), *sizes)

        return CF.converse_forward(
            x,
            self.weight,
            self.bias,
            self.scale,
            self.padding,
            self.padding_mode,
            self.eps,
            self.ndim,
            make_filter,
        )


class Converse2D(ConverseNd):
    r"""Reverse convolution: the regularised inverse of a depthwise convolution.

    For every channel, given the input :math:`y` padded by ``padding``, returns

    .. math::

        X^\star = \arg\min_X \|y - (X\otimes K)\downarrow_s\|^2 + \lambda\|X - X_0\|^2,
        \qquad \lambda = \sigma(b - 9) + \varepsilon,

    with :math:`X_0` the nearest upsampling of :math:`y`, then crops ``padding * scale``
    from every side. See :mod:`conversenet.functional` for the closed form.

    Args:
        in_channels: number of channels :math:`C`.
        out_channels: must equal ``in_channels`` (the operator is depthwise).
        kernel_size: side :math:`k` of the learnable kernels.
        scale: integer upsampling factor :math:`s`.
        padding: padding applied before solving.
        padding_mode: ``circular``, ``replicate``, ``reflect`` or ``constant``.
        eps: floor added to λ.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C, sH, sW)`

    Parameters ``weight`` :math:`(1, C, k, k)` (each kernel a softmax of a normal draw)
    and ``bias`` :math:`(1, C, 1, 1)` (zeros). Outside autograd (``torch.no_grad``,
    ``torch.inference_mode`` or frozen parameters) the spectral filter of the last input
    size is cached from its second use on (a single call keeps nothing), and rebuilt
    whenever the parameters differ from the values it was built from (however they were
    changed); ``filter_cache_max_bytes`` bounds the cache of each layer (a larger filter
    is recomputed every call). A kernel no larger than ``scale`` (the ×2 upsamplers,
    k = 2) needs no filter: the least-squares problem decouples into independent blocks,
    solved exactly in the pixel domain (:mod:`conversenet.reverse_conv`).

    Example:
        >>> layer = Converse2D(8, 8, kernel_size=3, scale=2, padding=2)
        >>> layer(torch.rand(1, 8, 16, 16)).shape
        torch.Size([1, 8, 32, 32])
    """

    ndim = 2

    def _build_filter(self, weight: Tensor, bias: Tensor, sizes: tuple[int, ...]) -> Tensor:
        return CF.converse2d_filter(weight, bias, self.scale, *sizes, self.eps)

    def forward(self, x: Tensor) -> Tensor:
        self._check_channels(x)
        return CF.converse2d_forward(
            x,
            self.weight,
            self.bias,
            self.scale,
            self.padding,
            self.padding_mode,
            self._filter,
            self.eps,
        )


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
        # Two plain means: torch.var_mean over a strided channel axis is several times slower.
        centred = x - x.mean(dim=1, keepdim=True)
        if _tracks_grad(centred) or _is_tracing():  # a trace unrolls the loop below
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
        if not _tracks_grad(x, *self.parameters()):
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
        intermediates freed as soon as they are used."""
        scales = (self.alpha1, self.alpha2) if self.residual_scales else (None, None)
        for branch, scale in zip((self.conv1, self.conv2), scales, strict=True):
            norm, first, *rest = branch
            weight = first.weight[:, :, 0, 0] * norm.weight
            h = _pointwise(
                norm.normalize(x), weight, first.bias + first.weight[:, :, 0, 0] @ norm.bias
            )
            for layer in rest:
                if isinstance(layer, nn.GELU) and layer.approximate == "none" and h.is_contiguous():
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
