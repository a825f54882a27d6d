"""Running a model over an image tensor: tiling, the x8 self-ensemble, and the two composed.

- :func:`tiled_apply` runs a function over overlapping tiles and blends them with
  raised-cosine weights, so memory stays bounded on large images.
- :func:`self_ensemble` averages a function over the 8 flips/rotations of its input (x8),
  transforming a blur kernel with the image.
- :class:`ModelRunner` is the one composition used by :class:`~conversenet.inference.Restorer`,
  :func:`~conversenet.evaluation.evaluate` and training validation: the image is cut
  into tiles, and each tile is restored (with x8, if asked) by the model called as its
  task requires (:func:`~conversenet.tasks.call_model`); a super-resolved result may then be
  projected onto the images whose bicubic downscale is the input
  (:func:`~conversenet.data.imresize.bicubic_back_projection`).

Converse2D solves its problem with FFTs over the whole (padded) input, so a tile's
result differs slightly from the untiled one near the tile borders; the blending ramps
hide the seams (``benchmarks/bench_tiling.py`` measures the difference).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_choice, check_int
from .colour import COLOUR_BASES, opponent_to_rgb, rgb_to_opponent
from .data.imresize import bicubic_back_projection
from .tasks import call_model

__all__ = [
    "DEFAULT_TILE",
    "DEFAULT_TILE_OVERLAP",
    "MIN_TILE",
    "ModelRunner",
    "PerChannel",
    "auto_tile",
    "count_tiles",
    "minimum_input_size",
    "model_channels",
    "self_ensemble",
    "tiled_apply",
]

DEFAULT_TILE = 512  # tile side in output pixels; images no larger than this run in one go
DEFAULT_TILE_OVERLAP = 32  # overlap in output pixels
MIN_TILE = 16  # the smallest tile side, in input pixels, that tiling accepts
MAX_PROBED_SIZE = 64

ProgressFn = Callable[[int], object]


# ---------------------------------------------------------------------------------------
# tiling
# ---------------------------------------------------------------------------------------
def _check_tile_args(tile, overlap) -> tuple[int | None, int]:
    if tile is not None:
        if isinstance(tile, bool) or not isinstance(tile, numbers.Integral):
            raise TypeError(f"tile must be an int or None, got {type(tile).__name__} {tile!r}")
        if tile < 1:
            raise ValueError(f"tile must be >= 1 (or None for no tiling), got {tile}")
    overlap = check_int("overlap", overlap, minimum=0)
    if tile is not None and overlap >= tile:
        raise ValueError(f"overlap must be smaller than the tile, got overlap {overlap} >= {tile}")
    return (int(tile) if tile is not None else None), overlap


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``length``; the last one ends flush."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def count_tiles(height: int, width: int, tile: int | None, overlap: int) -> int:
    """How many tiles :func:`tiled_apply` runs for an input of ``height × width``."""
    tile, overlap = _check_tile_args(tile, overlap)
    if tile is None:
        return 1
    return len(_tile_starts(height, tile, overlap)) * len(_tile_starts(width, tile, overlap))


def auto_tile(height: int, width: int, scale: int = 1) -> tuple[int | None, int]:
    """Default (tile, overlap) in input pixels for an input of ``height × width``.

    With ``base = DEFAULT_TILE / scale`` and ``overlap = DEFAULT_TILE_OVERLAP / scale``
    (input pixels): no tiling when the longer side fits in one tile of ``base + overlap``;
    otherwise the fewest tiles of at most ``base + overlap`` that cover the longer side
    with that overlap, all of the same (smallest such) size, and never smaller than a
    shorter side that fits in one tile. A 1024² image gets 2×2 tiles of 528 instead of
    3×3 of 512.
    """
    base = max(DEFAULT_TILE // scale, MIN_TILE)
    overlap = max(DEFAULT_TILE_OVERLAP // scale, 4)
    side = max(height, width)
    count = math.ceil((side - overlap) / base)
    if count <= 1:
        return None, overlap
    tile = math.ceil((side + (count - 1) * overlap) / count)
    short = min(height, width)
    return (max(tile, short) if short <= base + overlap else tile), overlap


def _ramp(length: int, ramp: int, at_start: bool, at_end: bool) -> Tensor:
    """1-D blending weights: 1 inside, a raised-cosine ramp on the sides shared with a
    neighbouring tile (the weights of two ramps facing each other sum to 1)."""
    w = torch.ones(length, dtype=torch.float32)
    ramp = min(ramp, length)
    if ramp > 0:
        i = torch.arange(ramp, dtype=torch.float64)
        up = (0.5 - 0.5 * torch.cos(math.pi * (i + 0.5) / ramp)).float()
        if not at_start:
            w[:ramp] = up
        if not at_end:
            w[length - ramp :] = torch.minimum(w[length - ramp :], up.flip(0))
    return w


def tiled_apply(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    tile: int | None,
    overlap: int = DEFAULT_TILE_OVERLAP,
    scale: int = 1,
    *,
    progress: ProgressFn | None = None,
) -> Tensor:
    """Apply ``fn`` to overlapping ``tile × tile`` patches of ``x`` and blend the results.

    Each tile's output is weighted by a raised-cosine ramp over the ``overlap`` it shares
    with its neighbours (full weight at the image border), the weighted outputs are
    summed and divided by the summed weights. Memory holds the input, the output, one
    weight map and one tile's worth of model activations.

    Args:
        fn: maps an ``(N, C, h, w)`` tensor to ``(N, C', scale·h, scale·w)``.
        x: input, ``(N, C, H, W)``.
        tile: tile side in input pixels; ``None`` (or a tile larger than the image)
            calls ``fn`` once on the whole input.
        overlap: overlap between neighbouring tiles, in input pixels (``< tile``).
        scale: ratio between output and input size (the super-resolution factor).
        progress: called with 1 after every tile (e.g. ``tqdm.update``).

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C', sH, sW)`

    Example:
        >>> x = torch.rand(1, 3, 100, 80)
        >>> y = tiled_apply(lambda t: 2 * t, x, tile=32, overlap=8)
        >>> torch.allclose(y, 2 * x)
        True
    """
    tile, overlap = _check_tile_args(tile, overlap)
    scale = check_int("scale", scale, minimum=1)
    if not isinstance(x, Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a 4-D tensor (N, C, H, W), got {getattr(x, 'shape', x)}")
    n, _, h, w = x.shape
    if tile is None or (h <= tile and w <= tile):
        out = _checked_call(fn, x, scale)
        if progress is not None:
            progress(1)
        return out

    tile_h, tile_w = min(tile, h), min(tile, w)
    rows, cols = _tile_starts(h, tile, overlap), _tile_starts(w, tile, overlap)
    out = weight_sum = None
    for top in rows:
        for left in cols:
            patch = x[..., top : top + tile_h, left : left + tile_w]
            y = _checked_call(fn, patch, scale)
            if out is None:
                out = torch.zeros(
                    n, y.shape[1], h * scale, w * scale, dtype=y.dtype, device=y.device
                )
                weight_sum = torch.zeros(h * scale, w * scale, dtype=y.dtype, device=y.device)
            wy = _ramp(tile_h * scale, overlap * scale, top == 0, top + tile_h == h)
            wx = _ramp(tile_w * scale, overlap * scale, left == 0, left + tile_w == w)
            weights = (wy[:, None] * wx[None, :]).to(device=y.device, dtype=y.dtype)
            t, s = top * scale, left * scale
            region = (..., slice(t, t + tile_h * scale), slice(s, s + tile_w * scale))
            out[region] += y * weights
            weight_sum[region[1:]] += weights
            del y, patch
            if progress is not None:
                progress(1)
    return out.div_(weight_sum)


def _checked_call(fn: Callable[[Tensor], Tensor], x: Tensor, scale: int) -> Tensor:
    y = fn(x)
    expected = (x.shape[0], x.shape[-2] * scale, x.shape[-1] * scale)
    if not isinstance(y, Tensor) or y.dim() != 4 or (y.shape[0], *y.shape[-2:]) != expected:
        raise ValueError(
            f"the model returned shape {tuple(getattr(y, 'shape', ()))} for an input of shape "
            f"{tuple(x.shape)}; expected (N, C', {expected[1]}, {expected[2]}) at scale {scale}"
        )
    return y


# ---------------------------------------------------------------------------------------
# self-ensemble
# ---------------------------------------------------------------------------------------
def _transform(t: Tensor, rotations: int, flip: bool) -> Tensor:
    t = torch.rot90(t, rotations, dims=(-2, -1)) if rotations else t
    return t.flip(-1) if flip else t


def _untransform(t: Tensor, rotations: int, flip: bool) -> Tensor:
    t = t.flip(-1) if flip else t
    return torch.rot90(t, -rotations, dims=(-2, -1)) if rotations else t


def self_ensemble(fn: Callable[..., Tensor], x: Tensor, kernel: Tensor | None = None) -> Tensor:
    """Average ``fn`` over the 8 rotations/flips of ``x`` (the "x8" self-ensemble).

    Each transformed input is restored, transformed back, and the 8 results averaged.
    With ``kernel`` (a blur kernel ``(N, 1, k, k)``), ``fn(x, kernel)`` is called with
    the kernel transformed like the image, as a non-blind deblurring model needs.

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: whatever ``fn`` returns for it.
    """
    total = None
    for rotations in range(4):
        for flip in (False, True):
            xt = _transform(x, rotations, flip)
            y = fn(xt) if kernel is None else fn(xt, _transform(kernel, rotations, flip))
            y = _untransform(y, rotations, flip)
            total = y.clone() if total is None else total.add_(y)
    return total.div_(8)


# ---------------------------------------------------------------------------------------
# the composition
# ---------------------------------------------------------------------------------------
class ModelRunner:
    """A model ready to run on image tensors: tiles outside, x8 inside each tile.

    Args:
        model: the network (in eval mode), called with :func:`~conversenet.tasks.call_model`.
        kernel: the blur kernel of a non-blind deblurring model, ``(1, 1, k, k)``.
        scale: ratio of output to input size (the super-resolution factor).
        tile: tile side in input pixels, ``"auto"`` (:func:`auto_tile` for each input size)
            or ``None`` for one pass over the whole input.
        tile_overlap: overlap between tiles in input pixels (default: from
            :func:`auto_tile`, at most a quarter of the tile); must be below half the tile.
        x8: average each tile over the 8 flips/rotations (the kernel is transformed too).
            A model with a true ``whole_image`` attribute (one that estimates something
            from the whole image, such as a blind blur kernel) is never tiled.
        min_size: the smallest input side the model accepts (:func:`minimum_input_size`);
            smaller inputs are padded (edge values repeated) and the result cropped back.
        back_projection: super-resolution only (``scale`` ≥ 2): make the whole result
            consistent with the input, the nearest image whose MATLAB bicubic downscale is
            the input (:func:`~conversenet.data.imresize.bicubic_back_projection`; exact for
            bicubic-downscaled inputs, as in the SR benchmarks).

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: :math:`(N, C', sH, sW)`.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        kernel: Tensor | None = None,
        scale: int = 1,
        tile: int | str | None = None,
        tile_overlap: int | None = None,
        x8: bool = False,
        min_size: int = 1,
        back_projection: bool = False,
    ) -> None:
        self.model = model
        self.kernel = kernel
        self.scale = check_int("scale", scale, minimum=1)
        if tile != "auto":
            tile = _check_tile_args(tile, 0)[0]
        if tile_overlap is not None:
            _check_tile_args(None, tile_overlap)
            if isinstance(tile, int) and 2 * tile_overlap >= tile:
                raise ValueError(
                    f"the tile overlap must be below half the tile, got overlap {tile_overlap} "
                    f"for tiles of {tile}"
                )
        self.tile = None if getattr(model, "whole_image", False) else tile
        self.tile_overlap = tile_overlap
        self.x8 = bool(x8)
        self.min_size = check_int("min_size", min_size, minimum=1)
        if back_projection and self.scale < 2:
            raise ValueError(
                "back_projection applies to super-resolution (an upscaling model), got a "
                f"model of scale {self.scale}"
            )
        self.back_projection = bool(back_projection)

    def tiling_for(self, height: int, width: int) -> tuple[int | None, int]:
        """(tile, overlap) in input pixels used for an input of ``height × width``."""
        auto_tile_size, auto_overlap = auto_tile(height, width, self.scale)
        tile = auto_tile_size if self.tile == "auto" else self.tile
        if self.tile_overlap is not None:
            overlap = self.tile_overlap
        else:
            overlap = auto_overlap if tile is None else min(auto_overlap, tile // 4)
        if tile is not None and max(height, width) <= tile:
            return None, overlap
        return tile, overlap

    def passes(self, height: int, width: int) -> int:
        """How many tiles an input of ``height × width`` is restored in."""
        return count_tiles(height, width, *self.tiling_for(height, width))

    def restore_tile(self, x: Tensor) -> Tensor:
        """One pass of the model (with x8, if asked) over a whole input."""
        kernel = None if self.kernel is None else self.kernel.to(x.device)
        if self.x8:
            return self_ensemble(lambda t, k=None: call_model(self.model, t, k), x, kernel)
        return call_model(self.model, x, kernel)

    def __call__(self, x: Tensor, progress: ProgressFn | None = None) -> Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = max(self.min_size - h, 0), max(self.min_size - w, 0)
        padded = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        tile, overlap = self.tiling_for(*padded.shape[-2:])
        y = tiled_apply(self.restore_tile, padded, tile, overlap, self.scale, progress=progress)
        y = y[..., : h * self.scale, : w * self.scale]
        return bicubic_back_projection(y, x, self.scale) if self.back_projection else y


class PerChannel(nn.Module):
    """A single-channel (gray) model run on each channel of a colour batch: the channels
    are folded into the batch, so ``(N, C, H, W)`` is restored as ``(N·C, 1, H, W)``.

    Args:
        model: the gray model.
        basis: for RGB input (``C = 3``), ``"opponent"`` restores the luminance and the
            two colour differences of :func:`~conversenet.colour.rgb_to_opponent` and
            converts back; ``"rgb"`` restores R, G and B as they are. Other channel
            counts are restored as they are. :func:`~conversenet.colour.gray_model_basis`
            says which suits a model (the opponent basis for a blind one).

    Shape:
        - Input: :math:`(N, C, H, W)`; Output: :math:`(N, C, sH, sW)`.
    """

    def __init__(self, model: nn.Module, basis: str = "opponent") -> None:
        super().__init__()
        self.model = model
        self.basis = check_choice("basis", basis, COLOUR_BASES)

    def extra_repr(self) -> str:
        return f"basis={self.basis!r}"

    def forward(self, x: Tensor) -> Tensor:
        n, c = x.shape[:2]
        opponent = self.basis == "opponent" and c == 3
        if opponent:
            x = rgb_to_opponent(x)
        y = self.model(x.reshape(n * c, 1, *x.shape[2:]))
        y = y.reshape(n, c, *y.shape[2:])
        return opponent_to_rgb(y) if opponent else y


def model_channels(model: nn.Module) -> int | None:
    """The image channels a model takes: its ``in_channels`` attribute, else the input
    channels of its first convolution (None when neither exists)."""
    value = getattr(model, "in_channels", None)
    if isinstance(value, int):
        return value
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return None


def minimum_input_size(
    model: nn.Module, channels: int, kernel: Tensor | None = None, limit: int = MAX_PROBED_SIZE
) -> int:
    """The smallest square input side ``model`` runs on (1 if it runs on 1×1), found by
    trying zero images of growing size; ``limit`` when none up to it works.

    Layers that pad (Converse2D's circular padding of 6 in Converse-DnCNN needs 6×6) or
    downsample set this bound.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    kernel = None if kernel is None else kernel.to(device=device, dtype=dtype)
    with torch.inference_mode():
        for size in range(1, limit + 1):
            try:
                call_model(
                    model, torch.zeros(1, channels, size, size, device=device, dtype=dtype), kernel
                )
            except (RuntimeError, ValueError, IndexError):
                continue
            return size
    return limit
