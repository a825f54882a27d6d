"""Export models and the Converse2D operator to ONNX, with their metadata.

    >>> from conversenet.export import export_model
    >>> report = export_model("converse_dncnn", "dncnn.onnx", height=256, width=256)
    >>> report.max_abs_error < 1e-4  # onnxruntime against PyTorch, on random [0, 1] images
    True

``torch.onnx.export(..., dynamo=True)`` traces the model; while it does, Converse2D runs in
real arithmetic with matrix-product DFTs (see :mod:`conversenet.functional` and
:mod:`conversenet.operator.dft`), which every ONNX runtime supports and runs fast.

Two shapes:

- **fixed** (``height``/``width``): the DFT matrices are constants of the file, and the
  onnxruntime backend runs the image in tiles of exactly that size (padding the last
  ones); this is the fastest;
- **dynamic** (``dynamic=True``): any height and width (a multiple of ``size_multiple``,
  at least ``min_tile``); the DFT matrices are built in the graph for each size.

The batch size is 1. Non-blind deblurring models (``converse_usrnet``, ``conv_usrnet``)
take the blur kernel as a second input, ``kernel`` of shape ``(1, 1, k, k)`` (``sf`` is
fixed to 1). The file's ``metadata_props`` describe it (:data:`METADATA_KEYS`);
:func:`conversenet.onnx_backend.read_onnx_metadata` reads them back.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from . import functional as CF
from ._version import __version__
from .io import missing_folder, remove_empty_folders
from .models import ModelInfo, create_model, get_model_info
from .onnx_model import create_session

__all__ = [
    "DEFAULT_SIZE",
    "METADATA_KEYS",
    "MIN_DYNAMIC_SIZE",
    "ExportReport",
    "NonBlindWrapper",
    "check_onnx",
    "export_model",
    "export_module",
]

#: Height and width of a fixed-size export when none is given.
DEFAULT_SIZE = 256
#: Smallest height/width a dynamic export accepts (before ``size_multiple``).
MIN_DYNAMIC_SIZE = 16
#: Largest height/width a dynamic export declares.
MAX_DYNAMIC_SIZE = 8192
#: Height and width a dynamic export is traced (and first checked) at when none is given.
DYNAMIC_TRACE_SIZE = 64
#: Tile side (input pixels) the onnxruntime backend uses with a dynamic export: the DFTs
#: are matrix products, so their cost per pixel grows with the tile side.
DYNAMIC_PREFERRED_TILE = 128

#: Largest value (elements) the export folds into a constant.
FOLDED_SIZE_LIMIT = 8192

#: The ``metadata_props`` keys every export writes (values are strings).
METADATA_KEYS = (
    "conversenet_version",
    "model",
    "task",
    "scale",
    "in_channels",
    "out_channels",
    "input_height",
    "input_width",
    "size_multiple",
    "min_tile",
    "preferred_tile",
    "kernel_size",
    "license",
    "weights",
    "weights_sha256",
    "description",
)
INPUT_NAME = "image"
KERNEL_NAME = "kernel"
OUTPUT_NAME = "restored"


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_model` / :func:`export_module` wrote.

    Attributes:
        path: the ``.onnx`` file (self-contained: no external data file).
        metadata: the ``metadata_props`` written, key -> string.
        max_abs_error: largest absolute difference between onnxruntime and PyTorch on the
            check inputs (``None`` when not checked).
        output_peak: largest absolute PyTorch output on the check inputs, the scale of
            ``max_abs_error`` (1 for a trained model; thousands for untrained weights).
        checked_sizes: the (height, width) inputs the check ran at.
        seconds: export time.
        opset: the ONNX opset of the file.
    """

    path: Path
    metadata: Mapping[str, str]
    max_abs_error: float | None = None
    checked_sizes: tuple[tuple[int, int], ...] = ()
    seconds: float = 0.0
    opset: int = 0
    output_peak: float | None = None


class NonBlindWrapper(nn.Module):
    """``model(image, kernel, 1)`` as a two-input module, for export.

    Shape:
        - image: :math:`(1, C, H, W)`; kernel: :math:`(1, 1, k, k)`; output: :math:`(1, C, H, W)`.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, kernel: Tensor) -> Tensor:
        return self.model(image, kernel, 1)


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def _size_multiple(model: nn.Module) -> int:
    """The factor height and width must be multiples of for the traced graph to hold
    (the compact denoiser pads odd sizes with a size-dependent branch)."""
    return int(getattr(model, "downscale", 1) or 1)


def gaussian_kernel(size: int, sigma: float = 1.6) -> Tensor:
    """A normalised isotropic Gaussian blur kernel, :math:`(1, 1, k, k)`, for checks."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum()).float()[None, None]


def _example_inputs(
    channels: int, height: int, width: int, kernel_size: int | None, seed: int
) -> tuple[Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(1, channels, height, width, generator=gen)
    if kernel_size is None:
        return (image,)
    return image, gaussian_kernel(kernel_size)


def export_module(
    module: nn.Module,
    path: str | os.PathLike,
    example_inputs: Sequence[Tensor],
    *,
    dynamic: bool = False,
    size_multiple: int = 1,
    min_size: int = MIN_DYNAMIC_SIZE,
    input_names: Sequence[str] = (INPUT_NAME,),
    opset: int | None = None,
    metadata: Mapping[str, object] | None = None,
    check: bool = True,
    check_sizes: Sequence[tuple[int, int]] = (),
) -> ExportReport:
    """Export any module whose first input is an image ``(1, C, H, W)`` to ``path``.

    Args:
        module: the model (put in eval mode here).
        path: the ``.onnx`` file to write (parent folders are created).
        example_inputs: inputs to trace with; the first one's size is the fixed size.
        dynamic: make the height and width of the first input dynamic (multiples of
            ``size_multiple``, at least ``min_size``).
        input_names: ONNX names of the inputs; the output is named ``restored``.
        opset: ONNX opset (default: the exporter's).
        metadata: stored as ``metadata_props`` (values turned into strings).
        check: run the file in onnxruntime and compare with PyTorch (needs onnxruntime).
        check_sizes: (height, width) to check at; default: the example size (and, for a
            dynamic export, a second, different size).

    Returns:
        An :class:`ExportReport`.
    """
    module = module.eval()
    path = Path(path)
    image = _check_example_inputs(example_inputs, input_names)
    dynamic_shapes = (
        _dynamic_shapes(image, len(example_inputs), size_multiple, min_size) if dynamic else None
    )
    start = time.perf_counter()
    program = _trace(module, example_inputs, input_names, opset, dynamic_shapes)
    model = program.model
    _optimize(model)
    props = _metadata_props(metadata, image, dynamic)
    model.metadata_props.update(props)
    model.producer_name = "conversenet"
    model.producer_version = __version__
    if check and not check_sizes:
        check_sizes = _default_check_sizes(image, dynamic, size_multiple)

    def check_file(written: Path) -> tuple[float | None, float | None]:
        if not check:
            return None, None
        return _compare(written, module, _random_inputs(example_inputs, check_sizes))

    (error, peak), seconds = _save_checked(program, path, check_file, start)
    sizes = tuple((int(h), int(w)) for h, w in check_sizes) if check else ()
    opset_used = int(model.opset_imports.get("", 0))
    return ExportReport(path, props, error, sizes, seconds, opset_used, peak)


def _check_example_inputs(example_inputs: Sequence[Tensor], input_names: Sequence[str]) -> Tensor:
    """The image of ``example_inputs`` (the first), checked against the names."""
    if len(input_names) != len(example_inputs):
        raise ValueError(
            f"expected {len(example_inputs)} input names, got {len(input_names)}: {input_names}"
        )
    image = example_inputs[0]
    if not isinstance(image, Tensor) or image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(
            "the first example input must be an image tensor of shape (1, C, H, W), got "
            f"{tuple(getattr(image, 'shape', ()))}"
        )
    return image


def _dynamic_shapes(image: Tensor, count: int, size_multiple: int, min_size: int) -> tuple:
    """``torch.onnx.export``'s ``dynamic_shapes``: the image's height and width free (in
    multiples of ``size_multiple``, at least ``min_size``), the other inputs fixed."""
    multiple = _check_size("size_multiple", size_multiple)
    low = math.ceil(min_size / multiple)
    high = MAX_DYNAMIC_SIZE // multiple
    dims = {}
    for axis, name in ((2, "height"), (3, "width")):
        if image.shape[axis] % multiple:
            raise ValueError(
                f"the example {name} {image.shape[axis]} is not a multiple of {multiple}"
            )
        dim = torch.export.Dim(f"{name}_blocks" if multiple > 1 else name, min=low, max=high)
        dims[axis] = multiple * dim if multiple > 1 else dim
    return (dims, *([None] * (count - 1)))


def _trace(module, example_inputs, input_names, opset, dynamic_shapes):
    """The ONNX program of ``module`` (dynamo exporter, export-friendly operators)."""
    with torch.no_grad(), CF.export_friendly():
        return torch.onnx.export(
            module,
            tuple(example_inputs),
            dynamo=True,
            opset_version=opset,
            input_names=list(input_names),
            output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic_shapes,
            optimize=False,  # its pattern rewriter takes minutes on a full-depth model
            verbose=False,
        )


def _metadata_props(
    metadata: Mapping[str, object] | None, image: Tensor, dynamic: bool
) -> dict[str, str]:
    """The ``metadata_props`` to store: ``metadata`` as strings, with the version and the
    input size (``dynamic`` or the example's)."""
    props = {str(k): str(v) for k, v in (metadata or {}).items()}
    props.setdefault("conversenet_version", __version__)
    props.setdefault("input_height", "dynamic" if dynamic else str(image.shape[2]))
    props.setdefault("input_width", "dynamic" if dynamic else str(image.shape[3]))
    return props


def _default_check_sizes(image: Tensor, dynamic: bool, m: int) -> list[tuple[int, int]]:
    """The example size and, for a dynamic export, a second, different size."""
    h, w = image.shape[-2:]
    sizes = [(h, w)]
    if dynamic:
        sizes.append((h + 2 * m + m * (h % 3 == 0), w + m))
    return sizes


def _save_checked(
    program, path: Path, check: Callable[[Path], tuple], start: float
) -> tuple[tuple, float]:
    """Save ``program`` to a temporary file next to ``path``, check it, then rename it:
    ``path`` appears only complete and checked, and a failed or interrupted export leaves
    neither a file nor a folder it made. Returns (the check's error, seconds since
    ``start`` until saved)."""
    new_folder = missing_folder(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem[:24]}.{os.getpid()}.partial.onnx")
    try:
        program.save(partial, external_data=False)
        seconds = time.perf_counter() - start
        error = check(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        if new_folder is not None:
            remove_empty_folders(new_folder)
        raise
    return error, seconds


def _optimize(model) -> None:
    """The optimizer passes worth their time, on an ``onnx_ir`` model, in place.

    Constant folding of small values (the twiddles and the shape arithmetic traced as
    operations: two thirds of the nodes; larger values, a layer's weights times a twiddle
    table, made 19 of the 25 MiB of Converse-DnCNN at 256² and are cheap to compute) and
    the removal of what it leaves unused, the merging of equal subexpressions and of
    equal initializers (the DFT matrices every Converse2D layer of a size shares), and no
    per-node debug metadata (the tracer's stack traces, about 1 KB a node). Not
    onnxscript's pattern rewriter (``optimize=True``): it fuses nothing in these models
    and took minutes on full-depth Converse-DnCNN.
    """
    # optional dependencies of the `onnx` extra, which torch.onnx.export has just used
    import onnx_ir as ir
    import onnxscript.optimizer
    from onnx_ir.passes import common

    onnxscript.optimizer.fold_constants(model, output_size_limit=FOLDED_SIZE_LIMIT)
    ir.passes.Sequential(
        common.RemoveUnusedNodesPass(),
        common.CommonSubexpressionEliminationPass(),
        common.LiftConstantsToInitializersPass(),
        common.DeduplicateInitializersPass(size_limit=2**62),  # any size
        common.RemoveUnusedNodesPass(),
        common.ClearMetadataAndDocStringPass(),
    )(model)


def check_onnx(
    path: str | os.PathLike,
    module: nn.Module,
    example_inputs: Sequence[Tensor],
    sizes: Sequence[tuple[int, int]],
    seed: int = 0,
) -> float:
    """Largest absolute difference between onnxruntime and PyTorch on random [0, 1] images.

    The image (first input) is redrawn at every (height, width) of ``sizes``; the other
    inputs (a blur kernel) are passed as given.
    """
    return _compare(path, module, _random_inputs(example_inputs, sizes, seed))[0]


def _random_inputs(
    example_inputs: Sequence[Tensor], sizes: Sequence[tuple[int, int]], seed: int = 0
) -> list[tuple[Tensor, ...]]:
    """``example_inputs`` with the image redrawn uniformly in [0, 1] at each size."""
    cases = []
    for index, (h, w) in enumerate(sizes):
        gen = torch.Generator().manual_seed(seed + index)
        image = torch.rand(1, example_inputs[0].shape[1], h, w, generator=gen)
        cases.append((image, *example_inputs[1:]))
    return cases


def _compare(
    path: str | os.PathLike, module: nn.Module, cases: Sequence[tuple[Tensor, ...]]
) -> tuple[float, float]:
    """The largest absolute difference between onnxruntime and PyTorch over ``cases``, and
    the largest absolute PyTorch output."""
    session = create_session(path, threads=max(1, torch.get_num_threads()))
    names = [i.name for i in session.get_inputs()]
    worst = peak = 0.0
    for inputs in cases:
        with torch.no_grad():
            expected = module(*inputs).numpy()
        feed = {name: t.numpy() for name, t in zip(names, inputs, strict=True)}
        got = session.run(None, feed)[0]
        if got.shape != expected.shape:
            size = "x".join(str(n) for n in inputs[0].shape[-2:])
            raise ValueError(
                f"onnxruntime returned shape {got.shape} for input {size}, PyTorch {expected.shape}"
            )
        worst = max(worst, float(np.abs(got - expected).max()))
        peak = max(peak, float(np.abs(expected).max()))
    return worst, peak


def export_model(
    name: str,
    path: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    pretrained: bool | None = None,
    height: int | None = None,
    width: int | None = None,
    dynamic: bool = False,
    opset: int | None = None,
    check: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Export a registered model to ONNX, with its metadata.

    Args:
        name: a name from :func:`conversenet.list_models`.
        path: the ``.onnx`` file to write.
        weights: a weights file (its SHA-256 is stored in the metadata).
        pretrained: load the published weights; default: when no ``weights`` file is
            given (an error for a model without published weights). ``False`` exports
            untrained weights.
        height, width: the fixed input size (default :data:`DEFAULT_SIZE`; one given sets
            both); for a dynamic export, the size traced with (default
            :data:`DYNAMIC_TRACE_SIZE`).
        dynamic: any input height and width instead of a fixed size.
        opset: ONNX opset (default: the exporter's).
        check: compare onnxruntime with PyTorch after the export.
        overrides: constructor arguments (e.g. ``{"num_blocks": 2}``), as for
            :func:`conversenet.create_model`.

    Returns:
        An :class:`ExportReport` (``max_abs_error`` is on the model's [0, 1] output scale).

    Raises:
        ValueError: unknown model, a classical model (``wiener``: nothing to export), no
            published weights with ``pretrained=True``, or a bad size.
    """
    info = get_model_info(name)
    _check_exportable(info, weights, pretrained)
    if height is None and width is None:
        height = width = DYNAMIC_TRACE_SIZE if dynamic else DEFAULT_SIZE
    height = _check_size("height", height if height is not None else width)
    width = _check_size("width", width if width is not None else height)
    pretrained = weights is None if pretrained is None else pretrained
    model = create_model(name, pretrained=pretrained, weights=weights, **dict(overrides or {}))
    model = model.eval()
    nonblind = info.task == "deblur_nonblind"
    kernel_size = int(getattr(model, "blur_kernel_size", 0)) if nonblind else None
    channels = int(dict(overrides or {}).get("in_channels", info.in_channels))
    multiple = _size_multiple(model)
    height, width = _trace_size(name, height, width, dynamic, multiple)
    module = NonBlindWrapper(model) if nonblind else model
    inputs = _example_inputs(channels, height, width, kernel_size, seed=0)
    with torch.no_grad():
        out_shape = module(*inputs).shape  # the output channels and the scale, as traced
    metadata = {
        "model": name,
        "task": info.task,
        "scale": out_shape[-2] // height,
        "in_channels": channels,
        "out_channels": out_shape[1],
        "size_multiple": multiple,
        "min_tile": MIN_DYNAMIC_SIZE if dynamic else 1,
        "preferred_tile": DYNAMIC_PREFERRED_TILE if dynamic else max(height, width),
        "kernel_size": kernel_size or "",
        **_provenance(info, weights, pretrained),
    }
    return export_module(
        module,
        path,
        inputs,
        dynamic=dynamic,
        size_multiple=multiple,
        input_names=(INPUT_NAME, KERNEL_NAME) if nonblind else (INPUT_NAME,),
        opset=opset,
        metadata=metadata,
        check=check,
    )


def _check_exportable(info: ModelInfo, weights, pretrained: bool | None) -> None:
    """Refuse a classical method, and published weights that do not exist."""
    if not info.learned:
        raise ValueError(
            f"{info.name} is a classical method, not a network: it sets its regularisation "
            "per image (a bisection on the image's spectrum), which has no ONNX graph; run "
            "it with conversenet itself"
        )
    if pretrained is None:
        pretrained = weights is None
    if pretrained and weights is None and info.pretrained is None:
        raise ValueError(
            f"{info.name} has no published weights; pass weights=FILE (--weights FILE), or "
            "pretrained=False (--untrained) to export untrained weights"
        )


def _trace_size(
    name: str, height: int, width: int, dynamic: bool, multiple: int
) -> tuple[int, int]:
    """The size to trace at: for a dynamic export, one its range holds; a fixed size
    must be a multiple of ``multiple``."""
    if dynamic:
        height, width = (max(v, MIN_DYNAMIC_SIZE) for v in (height, width))
        return tuple(math.ceil(v / multiple) * multiple for v in (height, width))
    if height % multiple or width % multiple:
        raise ValueError(
            f"{name} needs a height and width that are multiples of {multiple}, "
            f"got {height}x{width}"
        )
    return height, width


def _provenance(info: ModelInfo, weights, pretrained: bool) -> dict[str, str]:
    """Where the exported weights come from: the metadata's ``license``, ``weights``,
    ``weights_sha256`` and ``description``."""
    published = info.pretrained if pretrained else None
    if weights is not None:
        source, digest = Path(weights).name, _sha256(weights)
    elif published is not None:
        source, digest = published.filename, published.sha256
    else:
        source, digest = "untrained", ""
    licence = published.license if published else ""
    if weights is not None:
        licence = "see the weights file's origin"
    description = published.description if published else ""
    return {
        "license": licence,
        "weights": source,
        "weights_sha256": digest,
        "description": description or info.description,
    }
