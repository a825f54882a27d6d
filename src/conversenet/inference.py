"""Restoring NumPy and PIL images: :class:`Restorer` and :func:`restore`.

This is the edge between image arrays and models: channel handling (a gray model on a
colour image, an RGB model on a gray one), alpha pass-through, 8/16-bit and float
conversions, the default model of each task with its offline fallback, and a per-process
cache of loaded models. The tensor work (tiling, x8, back-projection) is
:class:`~conversenet.runner.ModelRunner`'s.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from tqdm import tqdm

from .checks import check_choice
from .colour import (
    gray_model_basis,
    jpeg_ycbcr_to_rgb,
    opponent_to_rgb,
    rgb_to_jpeg_ycbcr,
    rgb_to_opponent,
)
from .data.kernels import load_kernel, validate_kernel
from .io import array_to_pil, jpeg_chroma_subsampling, pil_to_array
from .models.registry import create_model, get_model_info
from .models.spec import ModelSpec
from .models.wiener import check_kernel_explains
from .onnx_model import OnnxModule, check_onnx_options
from .runner import MIN_TILE, ModelRunner, ProgressFn, minimum_input_size, model_channels
from .runtime import reuse_freed_memory
from .tasks import Task, command_task
from .tensors import chw_to_hwc, from_float, hwc_to_chw, image_to_tensor, tensor_to_image, to_float
from .weights import WeightsNotFoundError, find_weights, saved_model_options

__all__ = ["COLOUR_ROUTES", "Restorer", "check_image", "check_sigma", "load_model", "restore"]

#: A note is added when an image is restored in more tiles than this.
MANY_TILES = 64
#: Float images are on the [0, 1] scale; unclipped noise may take them this far outside.
FLOAT_MARGIN = 0.5
#: How a task with a colour model restores colour images when no model is named: ``auto``
#: (the colour model, but a JPEG with subsampled chroma goes to the blind gray model),
#: ``colour`` (always the colour model) or ``gray`` (always the blind gray model).
COLOUR_ROUTES = ("auto", "colour", "gray")
_CHROMA_NAMES = {(1, 1): "4:4:4", (1, 2): "4:2:2", (2, 2): "4:2:0"}
#: The files :func:`load_model` takes for a model: an export, or weights whose metadata
#: names their model.
ONNX_SUFFIX, WEIGHTS_SUFFIXES = ".onnx", (".safetensors", ".pth", ".pt")

_MODEL_CACHE: OrderedDict[tuple, nn.Module] = OrderedDict()
_MODEL_CACHE_SIZE = 3


def _weights_key(name: str, weights: str | os.PathLike | None) -> tuple | None:
    """What identifies a named model's weights on disk (None when there is no local file)."""
    info = get_model_info(name)
    source = Path(weights).expanduser() if weights is not None else None
    if source is None and info.pretrained is not None:
        source = find_weights(info.pretrained)
    if source is None or not source.is_file():
        return None
    stat = source.stat()
    return str(source.resolve()), stat.st_size, stat.st_mtime_ns


def load_pretrained(
    name: str,
    weights: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    download: bool = True,
    options: dict[str, Any] | None = None,
) -> nn.Module:
    """``create_model(name, pretrained=True, **options)`` in eval mode on ``device``, cached
    per process: a model whose weights file is unchanged is not loaded (nor hashed) again."""
    device = torch.device(device)
    options = dict(options or {})
    frozen = tuple(sorted((k, repr(v)) for k, v in options.items()))
    key = _weights_key(name, weights)
    if key is not None and (name, key, str(device), frozen) in _MODEL_CACHE:
        _MODEL_CACHE.move_to_end((name, key, str(device), frozen))
        return _MODEL_CACHE[(name, key, str(device), frozen)]
    model = create_model(
        name, pretrained=True, weights=weights, download=download, progress=download, **options
    ).to(device)
    model.eval()
    key = _weights_key(name, weights)  # a download has just put the file in place
    if key is not None:
        _MODEL_CACHE[(name, key, str(device), frozen)] = model
        while len(_MODEL_CACHE) > _MODEL_CACHE_SIZE:
            _MODEL_CACHE.popitem(last=False)
    return model


def _as_kernel(kernel) -> np.ndarray:
    if isinstance(kernel, (str, os.PathLike)):
        return load_kernel(kernel)
    if isinstance(kernel, Tensor):
        kernel = kernel.detach().cpu().numpy()
    array = np.asarray(kernel, dtype=np.float64)
    array = np.squeeze(array) if array.ndim > 2 else array
    if array.ndim != 2:
        raise ValueError(f"a blur kernel must be 2-D, got shape {np.shape(kernel)}")
    return validate_kernel(array)


def _check_kernel_explains(planes: np.ndarray, kernel: np.ndarray) -> None:
    """:func:`~conversenet.models.wiener.check_kernel_explains` on float planes (H, W, C)."""
    check_kernel_explains(hwc_to_chw(planes)[None], torch.from_numpy(kernel))


# ---------------------------------------------------------------------------------------
# the model behind a restorer: one factory for every front end
# ---------------------------------------------------------------------------------------
def load_model(
    model: str | os.PathLike | nn.Module,
    task: str = "denoise",
    *,
    with_kernel: bool = False,
    weights: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    download: bool = True,
    model_options: dict[str, Any] | None = None,
    offline_model: str | None = None,
    scale: int | None = None,
    in_channels: int | None = None,
) -> tuple[nn.Module, ModelSpec, list[str]]:
    """The module that restores images for the front-end ``task`` and its
    :class:`~conversenet.models.ModelSpec`, with notes for the user.

    ``model``: a registered name (its spec is the registry's; with ``weights`` or
    ``model_options`` the configuration may differ, so its minimum size is probed); the
    path of a file from ``conversenet export`` (``.onnx``: an
    :class:`~conversenet.onnx_backend.OnnxModule` run by onnxruntime on the CPU, with the
    spec the file stores; it holds its weights and options); the path of a weights file
    (``.safetensors`` from ``conversenet train``, whose metadata names the model and its
    options); or an ``nn.Module`` (its ``spec`` attribute if it has one, as an
    ``OnnxModule``, else probed: ``in_channels`` from its first convolution, ``scale`` as
    given). ``offline_model``: loaded instead, with a note, when the weights of ``model``
    are absent.
    """
    if _is_model_file(model):
        if Path(model).suffix.lower() == ONNX_SUFFIX:
            options = {"weights": weights, "model_options": model_options, "device": device}
            check_onnx_options(options)
            model = OnnxModule(model)  # restored as any module that carries its spec
        else:
            model, weights = _model_named_in(model, weights), model
    if isinstance(model, str):
        return _load_named(
            model, task, with_kernel, weights, device, download, model_options, offline_model
        )
    if not isinstance(model, nn.Module):
        raise TypeError(
            "model must be a model name, a model file, an nn.Module or None, "
            f"got {type(model).__name__}"
        )
    if weights is not None or model_options:
        raise ValueError("weights= and model_options= apply to a model name, not to an nn.Module")
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        spec = _probed_spec(model, command_task(task, with_kernel), scale, in_channels)
    spec.check_command(task, with_kernel)
    return model.to(device).eval(), spec, []


def _is_model_file(model) -> bool:
    """Whether ``model`` names a file (a path, or a string with a model file's suffix)."""
    suffixes = (ONNX_SUFFIX, *WEIGHTS_SUFFIXES)
    return isinstance(model, os.PathLike) or (
        isinstance(model, str) and Path(model).suffix.lower() in suffixes
    )


def _model_named_in(path: str | os.PathLike, weights: str | os.PathLike | None) -> str:
    """The registered model whose weights file ``path`` is, as its metadata says."""
    path = Path(path)
    if path.suffix.lower() not in WEIGHTS_SUFFIXES:
        raise ValueError(
            f"a model file is an exported {ONNX_SUFFIX} file or a weights file "
            f"({', '.join(WEIGHTS_SUFFIXES)}), got {path}"
        )
    if weights is not None:
        raise ValueError(f"the model is the weights file {path}: weights= does not apply")
    if not path.is_file():
        raise FileNotFoundError(f"no such weights file: {path}")
    name, _ = saved_model_options(path)
    if name is None:
        raise ValueError(
            f"{path} does not name its model (the .safetensors files of `conversenet train` "
            f"do): pass the model name, with weights={str(path)!r}"
        )
    return name


def _load_named(
    name, task, with_kernel, weights, device, download, model_options, offline_model
) -> tuple[nn.Module, ModelSpec, list[str]]:
    spec = get_model_info(name).spec()
    spec.check_command(task, with_kernel)
    try:
        module = load_pretrained(name, weights, device, download, model_options)
    except WeightsNotFoundError as err:
        if offline_model is None:  # the task's note says what to do instead, if any
            note = command_task(task, with_kernel).offline_note
            raise WeightsNotFoundError(f"{err}\n{note}".rstrip()) from err
        note = (
            f"the weights of {name} ({get_model_info(name).pretrained.filename}) are not "
            f"available here and cannot be downloaded: using the offline model {offline_model} "
            "instead (`conversenet models` says where to put the file)"
        )
        module, spec, _ = _load_named(
            offline_model, task, with_kernel, None, device, download, None, None
        )
        return module, spec, [note]
    if weights is not None or model_options:  # not necessarily the registered configuration
        spec = replace(spec, min_size=_probed_min_size(module, spec))
    return module, spec, []


def _probed_min_size(model: nn.Module, spec: ModelSpec) -> int:
    """The smallest side ``model`` runs on, found by trying it (with a 1×1 kernel for a
    non-blind model; :class:`Restorer` also pads an image to its kernel's side)."""
    kernel = torch.ones(1, 1, 1, 1) if spec.takes_kernel else None
    return minimum_input_size(model, spec.in_channels, kernel)


def _probed_spec(
    model: nn.Module, task: Task, scale: int | None, in_channels: int | None
) -> ModelSpec:
    """The spec of a module the registry does not know, found by trying it."""
    if task.name == "sr" and not scale:
        raise ValueError("pass scale= with an nn.Module super-resolution model")
    kernel_size = getattr(model, "blur_kernel_size", None)
    spec = ModelSpec(
        type(model).__name__,
        task.name,
        scale=int(scale) if task.name == "sr" else 1,
        in_channels=in_channels or model_channels(model) or 3,
        kernel_size=kernel_size if isinstance(kernel_size, int) else None,
        fixed_sigma=getattr(model, "fixed_sigma", None),  # trained at one level
    )
    return replace(spec, min_size=_probed_min_size(model, spec))


def _check_kernel_size(kernel: np.ndarray, spec: ModelSpec) -> None:
    k = kernel.shape
    if k[0] != k[1] or k[0] % 2 == 0:
        raise ValueError(f"the blur kernel must be square with an odd side, got {k[0]}x{k[1]}")
    if spec.kernel_size is not None and k[0] > spec.kernel_size:
        size = spec.kernel_size
        raise ValueError(
            f"{spec.name} takes blur kernels of at most {size}x{size}, got {k[0]}x{k[1]}"
        )


def _sigma_note(spec: ModelSpec, sigma: float) -> str | None:
    """What a registered denoiser does with the noise level it is told."""
    if spec.fixed_sigma is None:
        return (
            f"{spec.name} is a blind denoiser: it estimates the noise itself and does not use "
            f"sigma {sigma:g}"
        )
    if sigma != spec.fixed_sigma:
        return (
            f"{spec.name} is a non-blind denoiser trained for sigma {spec.fixed_sigma:g} "
            f"only; with sigma {sigma:g} noise it will under- or over-smooth"
        )
    return None


def _check_tile(
    tile: int | str | None, spec: ModelSpec, min_size: int, notes: list[str]
) -> int | str | None:
    """The tile to run with (``"auto"``: the spec's preferred tile, if any); a tile
    below the smallest useful one (``min_size``, at least :data:`MIN_TILE`) is raised to
    it, with a note."""
    fixed = spec.input_size
    if tile == "auto":
        return spec.preferred_tile or tile
    if fixed is not None and not tile:
        raise ValueError(
            f"{spec.name} is a fixed-size export ({fixed[0]}x{fixed[1]}): it runs in tiles, "
            "so --tile 0 does not apply"
        )
    if tile is None or tile == 0:
        return None
    if isinstance(tile, bool) or not isinstance(tile, int):
        raise TypeError(f"tile must be an int, 'auto' or None, got {tile!r}")
    if tile < 1:
        raise ValueError(f"tile must be >= 1 (or 0/None for no tiling), got {tile}")
    if fixed is not None and tile > min(fixed):
        raise ValueError(
            f"{spec.name} is a fixed-size export ({fixed[0]}x{fixed[1]}): the tile must be "
            f"at most {min(fixed)}, got {tile}"
        )
    smallest = max(MIN_TILE, min_size)
    if tile < smallest:
        notes.append(
            f"tile {tile} is below the smallest useful tile for {spec.name} "
            f"({smallest} pixels): using {smallest}"
        )
        return smallest
    return tile


def _make_runner(
    model: nn.Module,
    spec: ModelSpec,
    kernel: np.ndarray | None,
    tile: int | str | None,
    tile_overlap: int | None,
    x8: bool,
    back_projection: bool,
) -> tuple[ModelRunner, list[str]]:
    """The :class:`~conversenet.runner.ModelRunner` of ``model`` (images smaller than the
    spec's minimum, or than the blur kernel, are padded to it), and notes on the tile."""
    kernel_tensor = None
    min_size = spec.min_size
    if kernel is not None:
        kernel_tensor = torch.from_numpy(kernel.astype(np.float32))[None, None]
        min_size = max(min_size, kernel.shape[0])  # the image holds the kernel
    notes: list[str] = []
    runner = ModelRunner(
        model,
        kernel=kernel_tensor,
        scale=spec.scale,
        tile=_check_tile(tile, spec, min_size, notes),
        tile_overlap=tile_overlap,
        x8=x8,
        min_size=min_size,
        back_projection=back_projection,
    )
    return runner, notes


# ---------------------------------------------------------------------------------------
# the restorer
# ---------------------------------------------------------------------------------------
class Restorer:
    """A model ready to restore NumPy images, with the options of :func:`restore`.

    Load once, call many times (the command-line tool does this for every file)::

        restorer = Restorer("denoise")
        clean, notes = restorer(noisy_uint8)

    Args:
        task: ``"denoise"``, ``"sr"`` or ``"deblur"`` (with a ``kernel``: non-blind).
        model: a registered model name, a model file (``.onnx`` from ``conversenet export``,
            run by onnxruntime; ``.safetensors`` from ``conversenet train``), an ``nn.Module``
            (images in [0, 1], ``(N, C, H, W)``), or ``None`` for the task's default model
            (:mod:`conversenet.tasks`), which falls back to the task's offline model, with
            a note, when its weights are absent. :func:`load_model` loads it and reads its
            :class:`~conversenet.models.ModelSpec` (``restorer.spec``).
        weights: weights file for a named model (default: the published weights, found
            by :func:`conversenet.weights.resolve_weights`).
        device: where to run (``"cpu"``, ``"cuda"``, ...; default CPU).
        sigma: noise level on the 0..255 scale (denoising). A denoiser trained for one
            level warns when asked for another.
        scale: expected upscaling factor (super-resolution); checked against the model.
        kernel: blur kernel (array or file) for non-blind deblurring.
        tile: tile side in input pixels, ``"auto"`` (:func:`~conversenet.runner.auto_tile`)
            or ``None``/0 for one pass over the whole image.
        tile_overlap: overlap between tiles in input pixels (default: from ``auto_tile``).
        x8: average over the 8 flips/rotations (8× slower, usually a bit better).
        back_projection: super-resolution: the result made consistent with a bicubic
            downscaled input (:func:`~conversenet.data.imresize.bicubic_back_projection`).
        download: allow downloading missing published weights.
        in_channels: for an ``nn.Module`` model, the channels it takes (default: read
            from its first convolution).
        model_options: constructor arguments of a named model, over the registered ones
            and those stored in the weights file (e.g. ``{"num_blocks": 4}``).
        colour_route: with ``model=None``, how colour images are restored when the task
            has a colour model (:data:`COLOUR_ROUTES`): ``"auto"`` uses the colour model,
            except for a JPEG with subsampled chroma (pass ``chroma_subsampling`` when
            calling), which goes to the blind gray model (the task's offline model);
            ``"colour"`` and ``"gray"`` force one of them.

    A gray model restores a colour image one plane at a time
    (:func:`~conversenet.colour.gray_model_basis`): R, G and B for a model trained at one
    noise level, else the opponent channels of :mod:`conversenet.colour` or, for a JPEG
    with subsampled chroma, the file's own Y, Cb and Cr planes, Cb and Cr at their stored
    resolution. An ``nn.Module`` trained at one level says so with a ``fixed_sigma``
    attribute.
    """

    def __init__(
        self,
        task: str = "denoise",
        model: str | os.PathLike | nn.Module | None = None,
        *,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        sigma: float | None = None,
        scale: int | None = None,
        kernel=None,
        tile: int | str | None = "auto",
        tile_overlap: int | None = None,
        x8: bool = False,
        back_projection: bool = False,
        download: bool = True,
        in_channels: int | None = None,
        model_options: dict[str, Any] | None = None,
        colour_route: str = "auto",
    ) -> None:
        reuse_freed_memory()
        self.colour_route = check_choice("colour_route", colour_route, COLOUR_ROUTES)
        sigma = check_sigma(sigma) if sigma is not None else None
        self.kernel = _as_kernel(kernel) if kernel is not None else None
        self.task = task
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.model_options = dict(model_options or {})
        # the models colour images are routed to (colour, blind gray), built on first use
        self._routes: dict[str, str] = {}
        self._routed: dict[str, Restorer] = {}
        task_spec = command_task(task, with_kernel=self.kernel is not None)
        offline = None
        if model is None:
            model = task_spec.default_model
            if weights is None and not model_options:
                offline = task_spec.offline_model
                if task_spec.colour_model is not None:
                    self._routes = {"colour": task_spec.colour_model, "gray": offline}
                    self._route_options = {
                        "task": task,
                        "device": device,
                        "sigma": sigma,
                        "tile": tile,
                        "tile_overlap": tile_overlap,
                        "x8": x8,
                        "back_projection": back_projection,
                        "download": download,
                    }
        self.model, self.spec, self.notes = load_model(
            model,
            task,
            with_kernel=self.kernel is not None,
            weights=weights,
            device=self.device,
            download=download,
            model_options=model_options,
            offline_model=offline,
            scale=scale,
            in_channels=in_channels,
        )
        self._check_options(model, scale, in_channels, sigma)
        self.runner, tile_notes = _make_runner(
            self.model, self.spec, self.kernel, tile, tile_overlap, x8, back_projection
        )
        self.notes += tile_notes

    @property
    def model_name(self) -> str:
        """The registered name (or class name, or ``"... (ONNX)"``) of the model."""
        return self.spec.name

    @property
    def in_channels(self) -> int:
        return self.spec.in_channels

    @property
    def scale(self) -> int:
        return self.spec.scale

    @property
    def fixed_sigma(self) -> float | None:
        return self.spec.fixed_sigma

    def _check_options(self, model, scale, in_channels, sigma) -> None:
        """Options that do not fit the model loaded (``model`` as given); the note on sigma."""
        named = isinstance(model, str | os.PathLike) and not isinstance(self.model, OnnxModule)
        if self.colour_route != "auto" and not self._routes:
            raise ValueError(
                f"colour_route {self.colour_route!r} chooses between the colour and the gray "
                f"model of the default denoiser; it does not apply to {self.model_name}"
            )
        if in_channels is not None and named and in_channels != self.in_channels:
            raise ValueError(
                f"{self.model_name} takes {self.in_channels} channels, in_channels={in_channels}"
            )
        if self.task == "sr" and scale is not None and int(scale) != self.scale:
            raise ValueError(
                f"{self.model_name} upscales by {self.scale}, not by {scale}; "
                "choose a model trained for that factor"
            )
        if self.task == "denoise" and sigma is not None and named:
            note = _sigma_note(self.spec, sigma)
            self.notes += [note] if note else []
        if self.kernel is not None:
            _check_kernel_size(self.kernel, self.spec)

    # -----------------------------------------------------------------------------------
    def tiling_for(self, height: int, width: int) -> tuple[int | None, int]:
        """(tile, overlap) in input pixels used for an image of ``height × width``."""
        return self.runner.tiling_for(height, width)

    def _route(self, image: np.ndarray, chroma: tuple[int, int] | None) -> str | None:
        """Where a colour image goes when no model was named (``"colour"`` or ``"gray"``;
        ``None``: no routing, this restorer's model restores it)."""
        if not self._routes or not _is_colour(image):
            return None
        if self.colour_route != "auto":
            return self.colour_route
        return "gray" if _subsampled(chroma) else "colour"

    def _delegate(self, image: np.ndarray, chroma: tuple[int, int] | None = None) -> Restorer:
        """The restorer of ``image``: the model its route names (:meth:`_route`), else
        this restorer."""
        route = self._route(image, chroma)
        if route is None or self._routes[route] == self.model_name:
            return self
        if route not in self._routed:
            self._routed[route] = Restorer(model=self._routes[route], **self._route_options)
        return self._routed[route]

    def model_name_for(
        self, image: np.ndarray, chroma_subsampling: tuple[int, int] | None = None
    ) -> str:
        """The registered name (or class name) of the model that restores ``image``."""
        return self._delegate(image, chroma_subsampling).model_name

    def passes(self, image: np.ndarray, chroma_subsampling: tuple[int, int] | None = None) -> int:
        """How many model runs (tiles × channel passes) restoring ``image`` takes."""
        delegate = self._delegate(image, chroma_subsampling)
        if delegate is not self:
            return delegate.passes(image, chroma_subsampling)
        side = self.runner.min_size
        h, w = (max(n, side) for n in image.shape[:2])
        if not (self.in_channels == 1 and image.ndim == 3 and image.shape[2] >= 3):
            return self.runner.passes(h, w)
        v, u = _gray_planes(self.spec, chroma_subsampling)[1]
        return self.runner.passes(h, w) + 2 * self.runner.passes(-(-h // v), -(-w // u))

    def _run(self, planes: np.ndarray, progress: ProgressFn | None) -> np.ndarray:
        """Restore float32 planes (H, W, C) with C == model channels -> (sH, sW, C')."""
        with torch.inference_mode():
            y = self.runner(image_to_tensor(planes, self.device), progress=progress)
            return tensor_to_image(y, inplace=True)

    def __call__(
        self,
        image: np.ndarray,
        progress: ProgressFn | None = None,
        *,
        chroma_subsampling: tuple[int, int] | None = None,
    ) -> tuple[np.ndarray, list[str]]:
        """Restore one image array; returns ``(restored, notes)``.

        ``image``: ``(H, W)`` or ``(H, W, C)`` with ``C`` in 1..4 (2 and 4 carry alpha),
        dtype uint8, uint16 or float (values in [0, 1]). The result has the same dtype and
        channels, ``scale`` times larger for super-resolution. ``notes`` lists the
        conversions made (e.g. a gray model run on each colour channel).
        ``chroma_subsampling``: for an image decoded from a JPEG, its chroma subsampling
        as (vertical, horizontal) factors (``ImageInfo.chroma_subsampling`` of
        :func:`conversenet.io.load_image_with_info`; ``(2, 2)`` for 4:2:0). It decides
        the route of ``colour_route="auto"`` and how a gray model restores the image.
        """
        image = check_image(image)
        chroma = _check_chroma(chroma_subsampling)
        delegate = self._delegate(image, chroma)
        route_notes = _route_note(self, self._route(image, chroma), delegate.model_name, chroma)
        if delegate is not self:
            chroma_for = chroma if delegate.in_channels == 1 else None
            restored, notes = delegate(image, progress, chroma_subsampling=chroma_for)
            return restored, [*route_notes, *notes]
        notes = [*route_notes, *self.notes]
        notes += _size_notes(self.runner, self.model_name, *image.shape[:2])
        planes, alpha, colour_channels = _split_alpha(image)
        if self.kernel is not None:  # a kernel that cannot explain the image: refused first
            _check_kernel_explains(planes, self.kernel)
        if self.in_channels == colour_channels:
            out = self._run(planes, progress)
        elif self.in_channels == 1 and colour_channels == 3:
            x = image_to_tensor(planes, self.device)
            out, note = _run_gray_on_colour(self.runner, self.spec, x, progress, chroma)
            notes.append(note)
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
        return _join_alpha(image, from_float(out, image.dtype), alpha, self.scale, notes), notes


def _size_notes(runner: ModelRunner, name: str, height: int, width: int) -> list[str]:
    """Notes on an image restored in many tiles, or padded to the model's minimum."""
    notes = []
    tiles = runner.passes(height, width)
    if tiles > MANY_TILES:
        notes.append(f"restored in {tiles} tiles of {runner.tiling_for(height, width)[0]}")
    side = runner.min_size
    if min(height, width) < side:
        notes.append(
            f"the image ({width}x{height}) is smaller than the {side}x{side} that "
            f"{name} needs: its edges were repeated to that size and the result cropped back"
        )
    return notes


def _gray_planes(spec: ModelSpec, chroma: tuple[int, int] | None) -> tuple[str, tuple[int, int]]:
    """How a gray model restores a colour image: ``"rgb"``, ``"opponent"`` or ``"jpeg"``
    (:func:`~conversenet.colour.gray_model_basis`; a blind model denoising a JPEG with
    subsampled chroma takes the file's planes), and the subsampling of the chroma planes
    it restores."""
    basis = gray_model_basis(spec.fixed_sigma)
    if basis == "opponent" and _subsampled(chroma) and spec.scale == 1:
        return "jpeg", tuple(chroma)
    return basis, (1, 1)


def _run_gray_on_colour(
    runner: ModelRunner,
    spec: ModelSpec,
    x: Tensor,
    progress: ProgressFn | None,
    chroma: tuple[int, int] | None,
) -> tuple[np.ndarray, str]:
    """Restore an RGB image ``x`` (1, 3, H, W) with the gray model, one plane at a time,
    in the basis :func:`_gray_planes` chooses -> ((sH, sW, 3) array, note)."""
    basis, factors = _gray_planes(spec, chroma)
    forward, inverse = _GRAY_BASES[basis]
    with torch.inference_mode():
        x = forward(x)
        y = [runner(x[:, :1], progress=progress)]
        for c in (1, 2):
            y.append(_at_resolution(runner, x[:, c : c + 1], factors, progress))
        out = tensor_to_image(inverse(torch.cat(y, 1)), inplace=True)
    return out, f"{spec.name} is a gray model: {_gray_note(basis, spec.fixed_sigma, chroma)}"


# ---------------------------------------------------------------------------------------
# array conversions
# ---------------------------------------------------------------------------------------
def _split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int]:
    """An image's float32 planes (H, W, C) without alpha, its alpha plane (or None) and
    its colour channels (1 or 3)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    colour_channels = 1 if image.ndim == 2 else (3 if image.shape[2] >= 3 else 1)
    alpha = None
    if image.ndim == 3 and image.shape[2] in (2, 4):
        alpha, image = image[..., -1], image[..., :-1]
    planes = to_float(image)
    return (planes[..., None] if planes.ndim == 2 else planes), alpha, colour_channels


def _join_alpha(
    image: np.ndarray,
    result: np.ndarray,
    alpha: np.ndarray | None,
    scale: int,
    notes: list[str],
) -> np.ndarray:
    """The restored planes (sH, sW, C) in the channel layout of ``image``: its alpha
    plane (upscaled ×``scale``, with a note) appended, or a 2-D array for a 2-D image."""
    if alpha is not None:
        if scale != 1:
            notes.append(f"alpha channel upscaled x{scale} with bicubic interpolation")
            alpha = _resize_plane(alpha, scale)
        return np.concatenate([result, alpha[..., None]], axis=2)
    if result.shape[2] == 1 and image.ndim == 2:
        return result[..., 0]
    return result


def _is_colour(image: np.ndarray) -> bool:
    """RGB(A) with distinct channels (R = G = B is gray)."""
    if image.ndim != 3 or image.shape[2] < 3:
        return False
    return not (
        np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 1], image[..., 2])
    )


def _check_chroma(chroma) -> tuple[int, int] | None:
    if chroma is None:
        return None
    if (
        not isinstance(chroma, tuple | list)
        or len(chroma) != 2
        or not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in chroma)
    ):
        raise ValueError(
            "chroma_subsampling must be None or (vertical, horizontal) factors >= 1, such as "
            f"(2, 2) for 4:2:0, got {chroma!r}"
        )
    return int(chroma[0]), int(chroma[1])


def _subsampled(chroma: tuple[int, int] | None) -> bool:
    return chroma is not None and tuple(chroma) != (1, 1)


def _chroma_name(chroma: tuple[int, int]) -> str:
    return _CHROMA_NAMES.get(tuple(chroma), f"{chroma[0]}x{chroma[1]}-subsampled")


#: How a gray model's planes are made from RGB and turned back, per basis.
_GRAY_BASES = {
    "rgb": (lambda t: t, lambda t: t),
    "opponent": (rgb_to_opponent, opponent_to_rgb),
    "jpeg": (rgb_to_jpeg_ycbcr, jpeg_ycbcr_to_rgb),
}


def _gray_note(basis: str, fixed_sigma: float | None, chroma: tuple[int, int] | None) -> str:
    if basis == "rgb":
        return (
            f"each R, G, B channel restored separately (it was trained at sigma "
            f"{fixed_sigma:g}, the noise level of each channel)"
        )
    if basis == "opponent":
        return (
            "each colour channel restored separately, in the opponent colour basis "
            "(luminance and two colour differences)"
        )
    return (
        "the JPEG's Y, Cb and Cr planes restored one at a time, Cb and Cr at their stored "
        f"resolution ({_chroma_name(chroma)})"
    )


def _route_note(
    restorer: Restorer, route: str | None, name: str, chroma: tuple[int, int] | None
) -> list[str]:
    """Which model a routed colour image went to (``name``), and why; for a colour model
    named for a JPEG with subsampled chroma, that the gray model does better."""
    jpeg = _subsampled(chroma)
    if route is None:
        if restorer.task != "denoise" or restorer.in_channels != 3 or not jpeg:
            return []
        return [
            f"a JPEG with {_chroma_name(chroma)} chroma: colour models trained on independent "
            f"noise, such as {name}, do worse on such files than the blind gray model "
            f"{command_task(restorer.task).offline_model} (the default route for them)"
        ]
    what = "the colour model" if route == "colour" else "the blind gray model"
    head = f"a JPEG with {_chroma_name(chroma)} chroma" if jpeg else "a colour image"
    note = f"{head}: restored by {name}, {what} of {restorer.task}"
    if restorer.colour_route != "auto":
        better = " (the gray route does better on such files)" if jpeg and route == "colour" else ""
        return [f"{note}, as colour_route {restorer.colour_route!r} asks{better}"]
    if route == "gray":
        note += (
            ": JPEG's chroma subsampling and compression change the noise the colour model "
            "was trained on, and it does worse on such files (colour_route 'colour' uses it "
            "anyway)"
        )
    return [note]


def _at_resolution(
    runner: ModelRunner, plane: Tensor, factors: tuple[int, int], progress: ProgressFn | None
) -> Tensor:
    """Run ``runner`` on ``plane`` (N, 1, H, W) averaged over blocks of ``factors`` pixels
    (as JPEG subsamples chroma), then back to H × W by bilinear interpolation (as JPEG
    decoders upsample it)."""
    if factors == (1, 1):
        return runner(plane, progress=progress)
    h, w = plane.shape[-2:]
    small = F.avg_pool2d(plane, factors, ceil_mode=True)
    y = F.interpolate(runner(small, progress=progress), scale_factor=factors, mode="bilinear")
    return y[..., :h, :w]


def check_sigma(sigma: float) -> float:
    """A noise level on the 0..255 scale: a finite number with 0 < sigma <= 255."""
    if isinstance(sigma, bool) or not isinstance(sigma, int | float):
        raise TypeError(f"sigma must be a number (0..255 scale), got {type(sigma).__name__}")
    if not math.isfinite(sigma) or not 0 < sigma <= 255:
        raise ValueError(
            f"sigma must be a noise level with 0 < sigma <= 255 (the 0..255 scale), got {sigma}"
        )
    return float(sigma)


def check_image(image) -> np.ndarray:
    """``image`` if it is an image array :class:`Restorer` takes: ``(H, W)`` or ``(H, W, C)``,
    ``C`` in 1..4, uint8/uint16, or float with finite values on the [0, 1] scale (within
    [-0.5, 1.5]: a noisy image is not clipped, but 0..255 data is refused)."""
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
    if np.issubdtype(image.dtype, np.floating):
        finite = np.isfinite(image)
        if not finite.all():
            raise ValueError(
                f"the image has {int((~finite).sum())} NaN or infinite value(s); "
                "restoration needs finite values"
            )
        low, high = float(image.min()), float(image.max())
        if low < -FLOAT_MARGIN or high > 1 + FLOAT_MARGIN:
            raise ValueError(
                f"a floating-point image must be on the [0, 1] scale (noise may overshoot it "
                f"by {FLOAT_MARGIN:g}), found values in [{low:g}, {high:g}]; divide 8-bit data "
                "by 255 (16-bit data by 65535) first"
            )
    return image


def _resize_plane(plane: np.ndarray, scale: int) -> np.ndarray:
    t = image_to_tensor(plane)
    up = F.interpolate(t, scale_factor=scale, mode="bicubic", align_corners=False)
    return tensor_to_image(up, plane.dtype, gray_2d=True, inplace=True)


# ---------------------------------------------------------------------------------------
# the one-call API
# ---------------------------------------------------------------------------------------
def restore(
    image,
    task: str = "denoise",
    model: str | os.PathLike | nn.Module | Restorer | None = None,
    *,
    progress: bool = False,
    chroma_subsampling: tuple[int, int] | None = None,
    **options,
):
    """Restore one image with a pretrained model: denoising, super-resolution or deblurring.

    Args:
        image: a NumPy array ``(H, W)`` or ``(H, W, C)`` (``C`` = 1, 2 = gray + alpha, 3,
            4 = RGBA) of dtype uint8, uint16 or float in [0, 1]; a PIL image; or a
            ``torch.Tensor`` ``(C, H, W)`` or ``(N, C, H, W)`` (float in [0, 1], or uint8).
        task: ``"denoise"``, ``"sr"`` or ``"deblur"``.
        model: a model name (see ``conversenet.list_models()``), a ``.onnx`` file from
            ``conversenet export`` or a ``.safetensors`` file from ``conversenet train``, an
            ``nn.Module``, a :class:`Restorer`, or ``None`` for the task's default model.
        progress: show a progress bar over tiles on stderr.
        chroma_subsampling: for an array decoded from a JPEG, its chroma subsampling
            (``(2, 2)`` for 4:2:0; see calling a :class:`Restorer`); read from the file for
            a PIL image opened from a JPEG.
        **options: ``weights``, ``device``, ``sigma``, ``scale``, ``kernel`` (array or file;
            deblurring with a kernel uses the non-blind model), ``tile``,
            ``tile_overlap``, ``x8``, ``back_projection``, ``download``, ``model_options``,
            ``colour_route`` — see :class:`Restorer`.

    Returns:
        The restored image, of the same kind as ``image``: an array of the same dtype and
        channel layout (alpha passed through), a PIL image (palette and 1-bit images come
        back as RGB/RGBA/L), or a tensor of the same shape layout, dtype and device.
        Super-resolution multiplies height and width by the model's scale.

    Raises:
        TypeError: ``image`` is none of the accepted types (checked before any model is
            loaded).

    Conversions (a gray model on an RGB image, ...) are reported with ``warnings.warn``.

    Example:
        >>> import numpy as np, conversenet
        >>> noisy = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
        >>> clean = conversenet.restore(noisy, "denoise")  # doctest: +SKIP
        >>> clean.shape, clean.dtype  # doctest: +SKIP
        ((64, 64), dtype('uint8'))
    """
    if not isinstance(image, np.ndarray | Image.Image | Tensor):
        raise TypeError(
            "image must be a NumPy array, a PIL image or a torch.Tensor, "
            f"got {type(image).__name__}"
        )
    if isinstance(image, Tensor):
        _check_tensor_image(image)
    chroma_subsampling = _check_chroma(chroma_subsampling)
    if isinstance(model, Restorer):
        if options:
            raise ValueError("options cannot be combined with a ready Restorer")
        restorer = model
    else:
        restorer = Restorer(task, model, **options)
    if isinstance(image, Tensor):
        return _restore_tensor(image, restorer, progress, chroma_subsampling)
    notes: list[str] = []
    array = image
    if isinstance(image, Image.Image):
        array = pil_to_array(image, notes)
        chroma_subsampling = chroma_subsampling or jpeg_chroma_subsampling(image)
    result = _restore_array(array, restorer, progress, notes, chroma_subsampling)
    for note in notes:
        warnings.warn(note, UserWarning, stacklevel=2)
    if isinstance(image, Image.Image):
        return array_to_pil(result)  # palette and 1-bit images come back as L/LA/RGB/RGBA
    return result


def _restore_array(
    array: np.ndarray,
    restorer: Restorer,
    progress: bool,
    notes: list[str],
    chroma: tuple[int, int] | None = None,
) -> np.ndarray:
    bar = _progress_bar(restorer.passes(check_image(array), chroma), enabled=progress)
    try:
        update = bar.update if bar is not None else None
        result, more = restorer(array, progress=update, chroma_subsampling=chroma)
    finally:
        if bar is not None:
            bar.close()
    notes.extend(more)
    return result


def _check_tensor_image(image: Tensor) -> None:
    if image.dim() not in (3, 4) or image.shape[-3] not in (1, 2, 3, 4):
        raise ValueError(
            "a tensor image must be (C, H, W) or (N, C, H, W) with C in 1..4, "
            f"got shape {tuple(image.shape)}"
        )
    if not (image.is_floating_point() or image.dtype == torch.uint8):
        raise TypeError(f"a tensor image must be floating point or uint8, got {image.dtype}")


def _restore_tensor(
    image: Tensor, restorer: Restorer, progress: bool, chroma: tuple[int, int] | None
) -> Tensor:
    batch = image if image.dim() == 4 else image[None]
    notes: list[str] = []
    outputs = []
    for sample in batch.detach().cpu():
        array = chw_to_hwc(sample)
        if sample.is_floating_point():
            array = array.astype(np.float32)
        outputs.append(hwc_to_chw(_restore_array(array, restorer, progress, notes, chroma)))
    for note in dict.fromkeys(notes):
        warnings.warn(note, UserWarning, stacklevel=3)
    result = torch.stack(outputs).to(device=image.device, dtype=image.dtype)
    return result if image.dim() == 4 else result[0]


def _progress_bar(total: int, enabled: bool, desc: str | None = None):
    if not enabled:
        return None
    return tqdm(total=total, desc=desc, unit="tile", file=sys.stderr, leave=False)
