"""The Converse layers: the reverse convolution with learnable kernels and regulariser, in
1, 2 and 3 dimensions.

:class:`ConverseNd` holds what they share (the parameters, the checks, the inference filter
cache); :class:`Converse1d`, :class:`Converse2D` and :class:`Converse3d` fix the number of
spatial dimensions. The operator is :func:`~conversenet.operator.converse.converse2d` (and
its 1-D and 3-D forms).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..checks import check_int
from .checks import check_hyperparameters, regularizer
from .converse import converse_filter, converse_forward
from .fft import is_export_friendly

__all__ = ["Converse1d", "Converse2D", "Converse3d", "ConverseNd"]


class ConverseNd(nn.Module):
    r"""Base of :class:`Converse1d`, :class:`Converse2D` and :class:`Converse3d`: the
    parameters, the checks and the inference filter cache, for ``ndim`` spatial dimensions
    (a class attribute of each subclass).

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
        check_hyperparameters(kernel_size, scale, padding, padding_mode, eps)
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
        return regularizer(self.bias, self.eps)

    def clear_filter_cache(self) -> None:
        """Drop the cached spectral filter (it is rebuilt on the next call)."""
        self._filter_cache = None
        self._filter_key_seen = None

    def _cacheable(self) -> bool:
        if torch.compiler.is_compiling() or is_export_friendly():
            return False
        needs_graph = self.weight.requires_grad or self.bias.requires_grad
        return not (torch.is_grad_enabled() and needs_graph)

    def _build_filter(self, weight: Tensor, bias: Tensor, sizes: tuple[int, ...]) -> Tensor:
        return converse_filter(weight, bias, self.scale, sizes, self.eps)

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

        return converse_forward(
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
    from every side. See :mod:`conversenet.operator.converse` for the closed form.

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
    solved exactly in the pixel domain (:mod:`conversenet.operator.spatial`).

    Example:
        >>> layer = Converse2D(8, 8, kernel_size=3, scale=2, padding=2)
        >>> layer(torch.rand(1, 8, 16, 16)).shape
        torch.Size([1, 8, 32, 32])
    """

    ndim = 2


class Converse1d(ConverseNd):
    r"""Reverse convolution over the last dimension of a signal.

    For every channel, given the input :math:`y` padded by ``padding`` on both ends,

    .. math::

        X^\star = \arg\min_X \|y - (X\otimes K)\downarrow_s\|^2 + \lambda\|X - X_0\|^2,
        \qquad \lambda = \sigma(b - 9) + \varepsilon,

    with :math:`X_0` the nearest upsampling of :math:`y`, then crops ``padding * scale``
    from both ends.

    Args:
        in_channels, out_channels, kernel_size, scale, padding, padding_mode, eps: as
            :class:`Converse2D`.

    Shape:
        - Input: :math:`(N, C, L)`
        - Output: :math:`(N, C, sL)`

    Example:
        >>> layer = Converse1d(4, 4, kernel_size=5, scale=2)
        >>> layer(torch.rand(2, 4, 100)).shape
        torch.Size([2, 4, 200])
    """

    ndim = 1


class Converse3d(ConverseNd):
    r"""Reverse convolution over the last three dimensions (volumes, or video as
    :math:`(N, C, T, H, W)`).

    The problem of :class:`Converse1d` with :math:`k\times k\times k` kernels and the
    :math:`s\times s\times s` nearest upsampling as :math:`X_0`.

    Args:
        in_channels, out_channels, kernel_size, scale, padding, padding_mode, eps: as
            :class:`Converse2D`.

    Shape:
        - Input: :math:`(N, C, D, H, W)`
        - Output: :math:`(N, C, sD, sH, sW)`

    Example:
        >>> layer = Converse3d(2, 2, kernel_size=3, scale=2, padding=1)
        >>> layer(torch.rand(1, 2, 4, 8, 8)).shape
        torch.Size([1, 2, 8, 16, 16])
    """

    ndim = 3
