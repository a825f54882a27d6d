"""Running restoration models on real images: tiling, self-ensemble and :func:`restore`.

- :func:`tiled_apply` runs a model over overlapping tiles and blends them with
  raised-cosine weights, so memory stays bounded on large images.
- :func:`self_ensemble` averages a model over the 8 flips/rotations of its input (x8).
- :class:`Restorer` loads a model once and restores NumPy images with it (channel
  handling, alpha pass-through, 8/16-bit and float in and out, automatic tiling).
- :func:`restore` is the one-call front door on a NumPy array or a PIL image.

Converse2D solves its problem with FFTs over the whole (padded) input, so a tile's
result differs slightly from the untiled one near the tile borders; the blending ramps
hide the seams (``benchmarks/bench_tiling.py`` measures the difference).
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .runtime import reuse_freed_memory

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_NONBLIND_DEBLUR_MODEL",
    "TASKS",
    "Restorer",
    "auto_tile",
    "count_tiles",
    "restore",
    "self_ensemble",
    "tiled_apply",
]

TASKS = ("denoise", "sr", "deblur")
# One default model name per task (change them here only).
DEFAULT_MODELS = {
    "denoise": "converse_dncnn",
    "sr": "converse_srresnet",
    "deblur": "conversenet",
}
DEFAULT_NONBLIND_DEBLUR_MODEL = "converse_usrnet"
# Used instead of the default when its weights cannot be had (no file, no network): the
# project's own model, whose weights ship inside the package.
OFFLINE_DEFAULT_MODELS = {"denoise": "converse_dncnn_compact"}
# Non-blind denoisers and the single noise level (on the 0..255 scale) they were trained for.
FIXED_NOISE_LEVELS = {"converse_dncnn": 25.0}

DEFAULT_TILE = 512  # tile side in output pixels; images no larger than this run in one go
DEFAULT_TILE_OVERLAP = 32  # overlap in output pixels
MIN_TILE = 16

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
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Integral):
        raise TypeError(f"overlap must be an int, got {type(overlap).__name__} {overlap!r}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if tile is not None and overlap >= tile:
        raise ValueError(f"overlap must be smaller than the tile, got overlap {overlap} >= {tile}")
    return (int(tile) if tile is not None else None), int(overlap)


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
    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
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
# models
# ---------------------------------------------------------------------------------------
_MODEL_CACHE: OrderedDict[tuple, nn.Module] = OrderedDict()
_MODEL_CACHE_SIZE = 3


def _load_pretrained(name: str, weights, device: torch.device, download: bool) -> nn.Module:
    """Create ``name`` with its weights (``weights`` file or the cache), cached per process."""
    from . import hub
    from .models import create_model

    path = hub.resolve_weights(name, path=weights, download=download)
    key = (name, str(Path(path).resolve()), str(device))
    if key in _MODEL_CACHE:
        _MODEL_CACHE.move_to_end(key)
        return _MODEL_CACHE[key]
    model = create_model(name, pretrained=True, weights=path).to(device).eval()
    _MODEL_CACHE[key] = model
    while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
        _MODEL_CACHE.popitem(last=False)
    return model


def _first_conv_channels(model: nn.Module) -> int | None:
    value = getattr(model, "in_channels", None)
    if isinstance(value, int):
        return value
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    return None


def _as_kernel(kernel) -> np.ndarray:
    if isinstance(kernel, (str, os.PathLike)):
        from .data.kernels import load_kernel

        return load_kernel(kernel)
    if isinstance(kernel, Tensor):
        kernel = kernel.detach().cpu().numpy()
    array = np.asarray(kernel, dtype=np.float64)
    array = np.squeeze(array) if array.ndim > 2 else array
    if array.ndim != 2:
        raise ValueError(f"a blur kernel must be 2-D, got shape {np.shape(kernel)}")
    if not np.all(np.isfinite(array)):
        raise ValueError("the blur kernel has NaN or infinite values")
    total = array.sum()
    if not abs(total) > 1e-12:
        raise ValueError(f"the blur kernel sums to {total:g}; it must have a non-zero sum")
    return array / total


# ---------------------------------------------------------------------------------------
# the restorer
# ---------------------------------------------------------------------------------------
class Restorer:
    """A model ready to restore NumPy images, with the options of :func:`restore`.

    Load once, call many times (the command-line tool does this for every file)::

        restorer = Restorer("denoise")
        clean, notes = restorer(noisy_uint8)

    Args:
        task: ``"denoise"``, ``"sr"`` or ``"deblur"``.
        model: a registered model name, an ``nn.Module`` (images in [0, 1], ``(N, C, H,
            W)``), or ``None`` for the task's default (:data:`DEFAULT_MODELS`; deblurring
            with a ``kernel`` uses :data:`DEFAULT_NONBLIND_DEBLUR_MODEL`).
        weights: weights file for a named model (default: found by
            :func:`conversenet.hub.resolve_weights`).
        device: where to run (``"cpu"``, ``"cuda"``, ...; default CPU).
        sigma: noise level on the 0..255 scale (denoising). A non-blind model trained for
            one level warns when asked for another.
        scale: expected upscaling factor (super-resolution); checked against the model.
        kernel: blur kernel (array or file) for non-blind deblurring.
        tile: tile side in input pixels, ``"auto"`` (:func:`auto_tile`) or ``None``/0 for
            one pass over the whole image.
        tile_overlap: overlap between tiles in input pixels (default from
            :func:`auto_tile`).
        x8: average over the 8 flips/rotations (8× slower, usually a bit better).
        download: allow downloading missing official weights.
        in_channels: for an ``nn.Module`` model, the channels it takes (default: read
            from its first convolution).
    """

    def __init__(
        self,
        task: str = "denoise",
        model: str | nn.Module | None = None,
        *,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        sigma: float | None = None,
        scale: int | None = None,
        kernel=None,
        tile: int | str | None = "auto",
        tile_overlap: int | None = None,
        x8: bool = False,
        download: bool = True,
        in_channels: int | None = None,
    ) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        reuse_freed_memory()
        self.task = task
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.kernel = _as_kernel(kernel) if kernel is not None else None
        if self.kernel is not None and task != "deblur":
            raise ValueError(f"a blur kernel only applies to task 'deblur', not {task!r}")
        if tile == "auto":
            self.tile: int | str | None = "auto"
        elif tile is None or tile == 0:
            self.tile = None
        else:
            self.tile = _check_tile_args(tile, 0)[0]
        if tile_overlap is not None:
            _check_tile_args(None, tile_overlap)
        self.tile_overlap = tile_overlap
        self.x8 = bool(x8)
        self.notes: list[str] = []

        if model is None:
            model = DEFAULT_MODELS[task]
            if task == "deblur" and self.kernel is not None:
                model = DEFAULT_NONBLIND_DEBLUR_MODEL
            if weights is None:
                model = self._available_default(model, download)
        if isinstance(model, str):
            self._init_named(model, weights, download)
        elif isinstance(model, nn.Module):
            if weights is not None:
                raise ValueError("weights= applies to a model name, not to an nn.Module")
            self.model_name = type(model).__name__
            self.model = model.to(self.device).eval()
            self.in_channels = in_channels or _first_conv_channels(model) or 3
            self.scale = int(scale) if (task == "sr" and scale) else 1
            if task == "sr" and not scale:
                raise ValueError("pass scale= with an nn.Module super-resolution model")
            self.nonblind = self.kernel is not None
        else:
            raise TypeError(
                f"model must be a model name, an nn.Module or None, got {type(model).__name__}"
            )
        if in_channels is not None and isinstance(model, str) and in_channels != self.in_channels:
            raise ValueError(
                f"{self.model_name} takes {self.in_channels} channels, in_channels={in_channels}"
            )

        if task == "sr" and scale is not None and int(scale) != self.scale:
            raise ValueError(
                f"{self.model_name} upscales by {self.scale}, not by {scale}; "
                "choose a model trained for that factor"
            )
        if task == "denoise" and sigma is not None:
            fixed = FIXED_NOISE_LEVELS.get(self.model_name)
            if fixed is not None and float(sigma) != fixed:
                self.notes.append(
                    f"{self.model_name} is a non-blind denoiser trained for sigma {fixed:g} "
                    f"only; with sigma {float(sigma):g} noise it will under- or over-smooth"
                )
        if task == "deblur" and self.kernel is not None:
            self._check_kernel_size()

    def _available_default(self, name: str, download: bool) -> str:
        """``name``, or the task's offline default (with a note) when its weights are missing."""
        from . import hub

        fallback = OFFLINE_DEFAULT_MODELS.get(self.task)
        if fallback is None:
            return name
        try:
            hub.resolve_weights(name, download=download, progress=download)
        except (FileNotFoundError, ValueError, OSError) as err:
            self.notes.append(
                f"weights of {name} unavailable ({err}); using the packaged {fallback} instead"
            )
            return fallback
        return name

    def _init_named(self, name: str, weights, download: bool) -> None:
        from .models import get_model_info

        info = get_model_info(name)
        allowed = ("deblur", "deblur_nonblind") if self.task == "deblur" else (self.task,)
        if info.task not in allowed:
            raise ValueError(
                f"{name} is a {info.task!r} model; it cannot be used for {self.task!r}"
            )
        self.model_name = name
        self.in_channels = int(info.in_channels)
        self.scale = int(info.scale) if self.task == "sr" else 1
        self.nonblind = info.task == "deblur_nonblind"
        if self.nonblind and self.kernel is None:
            raise ValueError(
                f"{name} is a non-blind deblurring model: give it the blur kernel "
                "(--kernel FILE / kernel=...)"
            )
        if not self.nonblind and self.kernel is not None:
            raise ValueError(
                f"{name} is a blind deblurring model and takes no kernel; leave out the "
                f"kernel or use {DEFAULT_NONBLIND_DEBLUR_MODEL}"
            )
        self.model = _load_pretrained(name, weights, self.device, download)

    def _check_kernel_size(self) -> None:
        size = getattr(self.model, "blur_kernel_size", None)
        k = self.kernel.shape
        if k[0] != k[1] or k[0] % 2 == 0:
            raise ValueError(f"the blur kernel must be square with an odd side, got {k[0]}x{k[1]}")
        if isinstance(size, int) and k[0] > size:
            raise ValueError(
                f"{self.model_name} takes blur kernels of at most {size}x{size}, got {k[0]}x{k[1]}"
            )

    # -----------------------------------------------------------------------------------
    def tiling_for(self, height: int, width: int) -> tuple[int | None, int]:
        """(tile, overlap) in input pixels used for an image of ``height × width``."""
        auto_tile_size, auto_overlap = auto_tile(height, width, self.scale)
        overlap = self.tile_overlap if self.tile_overlap is not None else auto_overlap
        tile = auto_tile_size if self.tile == "auto" else self.tile
        if tile is not None:
            if max(height, width) <= tile:
                return None, overlap
            overlap = min(overlap, tile - 1)
        return tile, overlap

    def passes(self, image: np.ndarray) -> int:
        """How many model runs (tiles × channel passes) restoring ``image`` takes."""
        h, w = image.shape[:2]
        tile, overlap = self.tiling_for(h, w)
        colour = image.ndim == 3 and image.shape[2] >= 3
        per_channel = self.in_channels == 1 and colour
        return count_tiles(h, w, tile, overlap) * (3 if per_channel else 1)

    def _forward(self, x: Tensor) -> Tensor:
        if not self.nonblind:
            run = self.model
            return self_ensemble(run, x) if self.x8 else run(x)
        kernel = torch.from_numpy(self.kernel.astype(np.float32))[None, None].to(x.device)

        def run(image, k):
            return self.model(image, k.expand(image.shape[0], -1, -1, -1), 1)

        return self_ensemble(run, x, kernel) if self.x8 else run(x, kernel)

    def _run(self, planes: np.ndarray, progress: ProgressFn | None) -> np.ndarray:
        """Restore float32 planes (H, W, C) with C == model channels -> (sH, sW, C')."""
        h, w = planes.shape[:2]
        tile, overlap = self.tiling_for(h, w)
        x = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None]
        x = x.to(self.device)
        with torch.inference_mode():
            y = tiled_apply(self._forward, x, tile, overlap, self.scale, progress=progress)
            y = y[0].clamp_(0, 1).permute(1, 2, 0).cpu()
        return y.numpy()

    def __call__(
        self, image: np.ndarray, progress: ProgressFn | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Restore one image array; returns ``(restored, notes)``.

        ``image``: ``(H, W)`` or ``(H, W, C)`` with ``C`` in 1..4 (2 and 4 carry alpha),
        dtype uint8, uint16 or float (values in [0, 1]). The result has the same dtype and
        channels, ``scale`` times larger for super-resolution. ``notes`` lists the
        conversions made (e.g. a gray model run on each colour channel).
        """
        image = _check_image(image)
        notes = list(self.notes)
        dtype = image.dtype
        squeeze = image.ndim == 3 and image.shape[2] == 1
        if squeeze:
            image = image[..., 0]
        colour_channels = 1 if image.ndim == 2 else (3 if image.shape[2] >= 3 else 1)
        alpha = None
        if image.ndim == 3 and image.shape[2] in (2, 4):
            alpha, image = image[..., -1], image[..., :-1]
        planes = _to_float(image)
        if planes.ndim == 2:
            planes = planes[..., None]

        if self.in_channels == colour_channels:
            out = self._run(planes, progress)
        elif self.in_channels == 1 and colour_channels == 3:
            notes.append(
                f"{self.model_name} is a gray model: each colour channel restored separately"
            )
            out = np.concatenate(
                [self._run(planes[..., c : c + 1], progress) for c in range(3)], axis=2
            )
        elif self.in_channels == 3 and colour_channels == 1:
            notes.append(
                f"{self.model_name} is an RGB model: the gray image was restored as RGB "
                "(gray copied to R, G and B) and the mean of the result kept"
            )
            out = self._run(np.repeat(planes, 3, axis=2), progress).mean(axis=2, keepdims=True)
        else:
            raise ValueError(
                f"{self.model_name} takes {self.in_channels}-channel images; cannot restore an "
                f"image with {colour_channels} colour channel(s)"
            )

        result = _from_float(out, dtype)
        if alpha is not None:
            if self.scale != 1:
                notes.append(f"alpha channel upscaled x{self.scale} with bicubic interpolation")
                alpha = _resize_plane(alpha, self.scale)
            result = np.concatenate([result, alpha[..., None]], axis=2)
        elif result.shape[2] == 1 and not squeeze:
            result = result[..., 0]
        return result, notes


# ---------------------------------------------------------------------------------------
# array conversions
# ---------------------------------------------------------------------------------------
def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a NumPy array or a PIL image, got {type(image).__name__}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(
            f"expected an image of shape (H, W) or (H, W, C) with C in 1..4, got {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"the image is empty (shape {image.shape})")
    if not (image.dtype in (np.uint8, np.uint16) or np.issubdtype(image.dtype, np.floating)):
        raise TypeError(
            f"expected a uint8, uint16 or floating-point image, got dtype {image.dtype}"
        )
    return image


def _to_float(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535
    return image.astype(np.float32)


def _from_float(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.rint(x * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(x * 65535).astype(np.uint16)
    return x.astype(dtype)


def _resize_plane(plane: np.ndarray, scale: int) -> np.ndarray:
    t = torch.from_numpy(_to_float(plane))[None, None]
    up = F.interpolate(t, scale_factor=scale, mode="bicubic", align_corners=False)
    return _from_float(up[0, 0].clamp(0, 1).numpy(), plane.dtype)


# ---------------------------------------------------------------------------------------
# the one-call API
# ---------------------------------------------------------------------------------------
def restore(
    image,
    task: str = "denoise",
    model: str | nn.Module | Restorer | None = None,
    *,
    progress: bool = False,
    **options,
):
    """Restore one image with a pretrained model: denoising, super-resolution or deblurring.

    Args:
        image: a NumPy array ``(H, W)`` or ``(H, W, C)`` (``C`` = 1, 2 = gray + alpha, 3,
            4 = RGBA) of dtype uint8, uint16 or float in [0, 1], or a PIL image.
        task: ``"denoise"``, ``"sr"`` or ``"deblur"``.
        model: a model name (see ``conversenet.list_models()``), an ``nn.Module``, a
            :class:`Restorer`, or ``None`` for the task's default model.
        progress: show a progress bar over tiles on stderr.
        **options: ``weights``, ``device``, ``sigma``, ``scale``, ``kernel`` (array or file;
            deblurring with a kernel uses the non-blind model), ``tile``,
            ``tile_overlap``, ``x8``, ``download`` — see :class:`Restorer`.

    Returns:
        The restored image, of the same kind as ``image``: an array of the same dtype and
        channel layout (alpha passed through), or a PIL image (palette and 1-bit images
        come back as RGB/RGBA/L). Super-resolution multiplies height and width by the
        model's scale.

    Conversions (a gray model on an RGB image, ...) are reported with ``warnings.warn``.

    Example:
        >>> import numpy as np, conversenet
        >>> noisy = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
        >>> clean = conversenet.restore(noisy, "denoise")  # doctest: +SKIP
        >>> clean.shape, clean.dtype  # doctest: +SKIP
        ((64, 64), dtype('uint8'))
    """
    if isinstance(model, Restorer):
        if options:
            raise ValueError("options cannot be combined with a ready Restorer")
        restorer = model
    else:
        restorer = Restorer(task, model, **options)
    pil_image = None
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        from .io import pil_to_array

        pil_image = image
        pil_notes: list[str] = []
        image = pil_to_array(image, pil_notes)
    bar = _progress_bar(restorer.passes(image), enabled=progress)
    try:
        result, notes = restorer(image, progress=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    for note in ([] if pil_image is None else pil_notes) + notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    if pil_image is not None:
        from .io import array_to_pil

        return array_to_pil(result)  # palette and 1-bit images come back as L/LA/RGB/RGBA
    return result


def _progress_bar(total: int, enabled: bool, desc: str | None = None):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="tile", file=sys.stderr, leave=False)
