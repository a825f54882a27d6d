"""An exported file as a model: :class:`OnnxModule` runs a file from ``conversenet export``
in onnxruntime, called like the PyTorch model, and carries the file's
:class:`~conversenet.models.ModelSpec` (read from the ``metadata_props`` that
:mod:`conversenet.export` writes, :func:`read_onnx_metadata`).

:func:`conversenet.inference.load_model` loads a ``.onnx`` file through it, so that
:class:`~conversenet.inference.Restorer` drives it exactly as a PyTorch model: channel
handling, alpha pass-through, 8/16-bit and float images, tiling with blended overlaps,
self-ensemble. A fixed-size file runs every tile at its size: a smaller tile or image is
reflect-padded to it and the result cropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .models.registry import get_model_info, list_models
from .models.spec import ModelSpec

__all__ = [
    "OnnxModelInfo",
    "OnnxModule",
    "check_onnx_options",
    "create_session",
    "read_onnx_metadata",
]

REQUIRED_KEYS = ("model", "task", "scale", "in_channels", "input_height", "input_width")


@dataclass(frozen=True)
class OnnxModelInfo:
    """The metadata of an exported file (see :data:`conversenet.export.METADATA_KEYS`).

    Attributes:
        model: registry name of the exported model.
        task: ``denoise``, ``sr``, ``deblur`` or ``deblur_nonblind``.
        scale: output size / input size.
        in_channels, out_channels: image channels in and out.
        input_size: the fixed (height, width), or ``None`` for a dynamic export.
        size_multiple: height and width must be multiples of it (dynamic exports).
        min_tile, preferred_tile: smallest input side accepted, and the tile side to use.
        kernel_size: side of the blur-kernel input (non-blind deblurring), else ``None``.
        license, weights, weights_sha256, description: where the weights come from.
        properties: every key/value stored in the file.
    """

    model: str
    task: str
    scale: int
    in_channels: int
    out_channels: int
    input_size: tuple[int, int] | None
    size_multiple: int = 1
    min_tile: int = 1
    preferred_tile: int = 256
    kernel_size: int | None = None
    license: str = ""
    weights: str = ""
    weights_sha256: str = ""
    description: str = ""
    properties: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def dynamic(self) -> bool:
        """Whether the file takes any height and width."""
        return self.input_size is None

    def spec(self) -> ModelSpec:
        """The descriptor of the file's model. Its minimum size is 1: :class:`OnnxModule`
        pads a smaller input to the file's ``min_tile`` (or fixed size) itself. A fixed-size
        file runs in tiles of its size; a dynamic one prefers ``preferred_tile``."""
        registered = self.model in list_models()
        return ModelSpec(
            f"{self.model} (ONNX)",
            self.task,
            scale=self.scale,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            size_multiple=self.size_multiple,
            kernel_size=self.kernel_size,
            # a denoiser trained at one noise level restores colour images channel by channel
            fixed_sigma=get_model_info(self.model).fixed_sigma if registered else None,
            input_size=self.input_size,
            preferred_tile=min(self.input_size) if self.input_size else self.preferred_tile,
        )


def _int(props: Mapping[str, str], key: str, default: int | None = None) -> int | None:
    value = props.get(key, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"metadata {key!r} must be an integer, got {value!r}") from None


def read_onnx_metadata(source: Any) -> OnnxModelInfo:
    """Read the metadata of an exported model.

    Args:
        source: a path to the ``.onnx`` file (read with the ``onnx`` package), an
            ``onnxruntime.InferenceSession``, or a mapping of the properties.

    Raises:
        ValueError: the file was not written by ``conversenet export`` (keys missing).
    """
    if isinstance(source, Mapping):
        props = {str(k): str(v) for k, v in source.items()}
    elif isinstance(source, (str, os.PathLike)):
        # optional dependency of the `onnx` extra
        import onnx

        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such ONNX file: {path}")
        proto = onnx.load(str(path), load_external_data=False)
        props = {p.key: p.value for p in proto.metadata_props}
    elif hasattr(source, "get_modelmeta"):
        props = dict(source.get_modelmeta().custom_metadata_map)
    else:
        raise TypeError(
            "source must be a path, an onnxruntime.InferenceSession or a mapping, "
            f"got {type(source).__name__}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in props]
    if missing:
        raise ValueError(
            "this ONNX file was not written by `conversenet export` (missing metadata: "
            f"{', '.join(missing)}); export the model with `conversenet export MODEL -o FILE`"
        )
    fixed = props["input_height"] != "dynamic"
    size = (_int(props, "input_height"), _int(props, "input_width")) if fixed else None
    kernel_size = _int(props, "kernel_size")
    return OnnxModelInfo(
        model=props["model"],
        task=props["task"],
        scale=_int(props, "scale"),
        in_channels=_int(props, "in_channels"),
        out_channels=_int(props, "out_channels", _int(props, "in_channels")),
        input_size=size,
        size_multiple=_int(props, "size_multiple", 1),
        min_tile=_int(props, "min_tile", 1),
        preferred_tile=_int(props, "preferred_tile", max(size) if size else 256),
        kernel_size=kernel_size or None,
        license=props.get("license", ""),
        weights=props.get("weights", ""),
        weights_sha256=props.get("weights_sha256", ""),
        description=props.get("description", ""),
        properties=props,
    )


def create_session(path: str | os.PathLike, threads: int | None = None):
    """An onnxruntime CPU session for an exported file (``threads``: intra-op threads)."""
    try:  # optional dependency of the `onnx` extra
        import onnxruntime as ort
    except ImportError:
        raise RuntimeError(
            "the onnxruntime backend needs the `onnx` extra: pip install 'conversenet[onnx]'"
        ) from None

    options = ort.SessionOptions()
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only
    # Memory patterns pre-plan one arena block per run: half the peak memory without them
    # (1.4 instead of 2.6 GB for Converse-DnCNN at 256²), at the same speed.
    options.enable_mem_pattern = False
    # No constant folding: folding would store every Converse2D layer's spectral filter
    # (several GiB for Converse-DnCNN at 512²); computed at each run they cost ~10%.
    try:
        return ort.InferenceSession(
            str(path),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=["ConstantFolding"],
        )
    except Exception as err:  # onnxruntime's own kinds (InvalidProtobuf, Fail, ...)
        if Path(path).is_file() and Path(path).stat().st_size == 0:
            raise ValueError(f"{path}: empty file (0 bytes), not an ONNX model") from None
        reason = str(err).rsplit("failed:", 1)[-1].strip() or type(err).__name__
        raise ValueError(
            f"{path}: not an ONNX model onnxruntime can load ({reason}); write one with "
            "`conversenet export MODEL -o FILE`"
        ) from None


def _pad_to(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reflect-pad the bottom and right of an (N, C, h, w) array to height × width."""
    pad_h, pad_w = height - x.shape[-2], width - x.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return x
    # NumPy reflects repeatedly when the padding is larger than the array
    mode = "reflect" if min(x.shape[-2:]) > 1 else "edge"
    return np.pad(x, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode=mode)


class OnnxModule(nn.Module):
    """An exported model run by onnxruntime, called like the PyTorch model.

    Args:
        path: the ``.onnx`` file from ``conversenet export``.
        threads: onnxruntime intra-op threads (default: its own choice, all cores).

    Shape:
        - Input: :math:`(N, C, h, w)` in [0, 1] (and, for non-blind deblurring, a kernel
          :math:`(N \\text{ or } 1, 1, k, k)` with :math:`k \\le` ``kernel_size``, odd).
          A fixed-size file takes :math:`h \\le H`, :math:`w \\le W`.
        - Output: :math:`(N, C_{out}, sh, sw)`.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no such ONNX file: {self.path}")
        self.session = create_session(self.path, threads)
        self.info = read_onnx_metadata(self.session)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.spec = self.info.spec()
        self.in_channels = self.info.in_channels
        self.scale = self.info.scale

    def extra_repr(self) -> str:
        size = "dynamic" if self.info.dynamic else "x".join(map(str, self.info.input_size))
        return f"{self.path.name}, model={self.info.model}, size={size}"

    def _target_size(self, h: int, w: int) -> tuple[int, int]:
        info = self.info
        if info.input_size is not None:
            height, width = info.input_size
            if h > height or w > width:
                raise ValueError(
                    f"{self.path.name} takes inputs of at most {height}x{width} (a fixed-size "
                    f"export), got {h}x{w}; tile the image (tile <= {min(height, width)})"
                )
            return height, width
        m = info.size_multiple
        height = max(-(-h // m) * m, info.min_tile)
        width = max(-(-w // m) * m, info.min_tile)
        return -(-height // m) * m, -(-width // m) * m

    def _kernels(self, kernel: Tensor, count: int) -> np.ndarray:
        """(N, 1, k, k) kernels, each zero-padded to the file's kernel size."""
        k = np.asarray(kernel.detach().cpu().numpy(), dtype=np.float32)
        k = k.reshape(-1, 1, *k.shape[-2:])
        if k.shape[0] not in (1, count):
            raise ValueError(
                f"expected 1 or {count} blur kernels (one per image), got {k.shape[0]}"
            )
        size, target = k.shape[-1], int(self.info.kernel_size)
        if k.shape[-2] != size or size > target or (target - size) % 2:
            raise ValueError(
                f"{self.info.model} takes square blur kernels of at most {target}x{target} "
                f"with an odd side, got {k.shape[-2]}x{size}"
            )
        pad = (target - size) // 2
        k = np.pad(k, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        return np.broadcast_to(k, (count, *k.shape[1:]))

    def forward(self, x: Tensor, kernel: Tensor | None = None, sf: int = 1) -> Tensor:
        if sf != 1:
            raise ValueError(f"an exported model runs with sf=1 only, got sf={sf}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected an input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        nonblind = self.info.kernel_size is not None
        if nonblind and kernel is None:
            raise ValueError(f"{self.info.model} is a non-blind model: pass the blur kernel")
        if not nonblind and kernel is not None:
            raise ValueError(f"{self.info.model} takes no blur kernel")
        h, w = x.shape[-2:]
        height, width = self._target_size(h, w)
        images = x.detach().to("cpu", torch.float32).numpy()
        kernels = self._kernels(kernel, len(images)) if nonblind else None
        outputs = []
        for index, image in enumerate(images):  # the files take a batch of one
            feed = {self.input_names[0]: np.ascontiguousarray(_pad_to(image[None], height, width))}
            if nonblind:
                feed[self.input_names[1]] = np.ascontiguousarray(kernels[index : index + 1])
            out = self.session.run(None, feed)[0]
            outputs.append(out[..., : h * self.scale, : w * self.scale])
        return torch.from_numpy(np.concatenate(outputs)).to(x.device)


def check_onnx_options(options: Mapping[str, Any]) -> None:
    """Refuse the :class:`~conversenet.inference.Restorer` options that an exported file
    fixes or cannot honour (``colour_route``, ``model_options``, ``weights``, a device other
    than the CPU), each with what to do instead."""
    route = options.get("colour_route", "auto")
    if route != "auto":
        raise ValueError(
            "the onnxruntime backend runs the one model of its file, so colour_route "
            f"{route!r} cannot route colour images to another (--colour-route applies "
            "to the PyTorch backend)"
        )
    if options.get("model_options"):
        raise ValueError(
            "the onnxruntime backend takes no model options: the exported file fixes the "
            "architecture (export it with the options you want)"
        )
    if options.get("weights") is not None:
        raise ValueError(
            "the onnxruntime backend takes no weights file: they are inside the ONNX file "
            "(export other weights with `conversenet export MODEL --weights FILE`)"
        )
    device = options.get("device")
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"the onnxruntime backend runs on the CPU, not on {device}")
