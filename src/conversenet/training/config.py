"""Typed training configuration: dataclasses, YAML loading, validation and ``--set`` overrides.

A configuration file is a YAML mapping with the sections ``model``, ``data``,
``degradation``, ``validation``, ``optim`` and ``train`` plus the top-level ``task``.
Every key is checked: an unknown or misspelt key is a :class:`ConfigError` that names the
key, the valid keys of its section and the closest match; a value of the wrong type is a
:class:`ConfigError` naming the expected and the given type.

Example:
    >>> cfg = load_config("configs/converse_dncnn_s25.yaml", overrides=["optim.lr=2e-4"])
    >>> cfg.optim.lr
    0.0002
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

__all__ = [
    "KERNEL_TYPES",
    "LOSSES",
    "TASKS",
    "Config",
    "ConfigError",
    "DataConfig",
    "DegradationConfig",
    "ModelConfig",
    "OptimConfig",
    "TrainConfig",
    "ValidationConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
    "validate_config",
]

TASKS = ("denoise", "sr", "deblur", "deblur_nonblind")
LOSSES = ("l1", "l2", "charbonnier")
KERNEL_TYPES = ("gaussian", "motion")
# YAML 1.1 (PyYAML) reads exponent notation without a dot ("1e-5") as a string
_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """An invalid training configuration (unknown key, wrong type or bad value)."""


@dataclass
class ModelConfig:
    """Which network to train: a registry name and keyword overrides for ``create_model``."""

    name: str = "converse_dncnn"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Training images and how patches are drawn from them.

    ``patch_size`` is the side of the *target* (high-resolution) patch; for super-resolution
    the input patch is ``patch_size // scale``. ``batch_size`` is the global batch, split
    evenly across data-parallel ranks. One epoch visits ``repeat`` patches per image.
    """

    train_dirs: list[str] = field(default_factory=list)
    patch_size: int = 40
    batch_size: int = 16
    num_workers: int = 2
    repeat: int = 1
    channels: int = 1
    cache_images: bool = True


@dataclass
class DegradationConfig:
    """On-the-fly degradation of the clean patches (sigmas on the [0, 255] scale).

    Denoising: ``sigma`` (fixed) or ``sigma_range`` (uniform). Super-resolution: ``scale``
    (MATLAB bicubic, low-resolution input kept in float). Deblurring: a random kernel of
    side ``kernel_size`` drawn uniformly among ``kernel_types`` (``gaussian``: anisotropic
    Gaussian, ``motion``: camera shake), wrap boundary, then noise with sigma uniform in
    ``sigma_range``; ``deblur_nonblind`` also feeds the kernel to the model.
    """

    sigma: float | None = None
    sigma_range: list[float] | None = None
    scale: int = 1
    kernel_size: int = 7
    kernel_types: list[str] = field(default_factory=lambda: ["gaussian", "motion"])


@dataclass
class ValidationConfig:
    """Periodic validation on a folder of clean images, with the ``conversenet eval``
    protocol of the task (noise seed 0 per image, clamped uint8 output, PSNR).

    ``sigma`` is the noise level (denoising: the AWGN level; deblurring: the noise added
    after the blur); ``kernel`` a kernel file for the deblurring tasks; ``max_images``
    limits the number of images (first ones by name).
    """

    dir: str | None = None
    every: int = 1000
    sigma: float = 25.0
    kernel: str | None = None
    max_images: int | None = None


@dataclass
class OptimConfig:
    """Adam, the loss, the multi-step schedule (milestones in steps), clipping, EMA, AMP."""

    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    loss: str = "l1"
    charbonnier_eps: float = 1e-3
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    grad_clip: float = 0.0
    ema_decay: float = 0.0
    amp: bool = True
    amp_dtype: str = "bfloat16"


@dataclass
class TrainConfig:
    """Length of the run, seeding, logging, checkpointing and export."""

    total_steps: int = 1000
    seed: int = 0
    device: str = "auto"
    num_threads: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    keep_last: int = 3
    tensorboard: bool = True
    progress_bar: bool = True
    export_ema: bool = True
    out_dir: str | None = None


@dataclass
class Config:
    """A complete training configuration (see the module docstring)."""

    task: str = "denoise"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ---------------------------------------------------------------------------------------
# typed conversion from plain data
# ---------------------------------------------------------------------------------------
def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    return getattr(tp, "__name__", str(tp))


def _unknown_key_error(key: str, where: str, valid: Iterable[str]) -> ConfigError:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    place = f" in section {where!r}" if where else ""
    return ConfigError(f"unknown config key {key!r}{place}{hint} valid keys: {', '.join(valid)}")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (int -> float etc.)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(
            f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping (section), got {type(value).__name__} {value!r}"
            )
        return _dataclass_from_dict(tp, value, where)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(
                f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
            )
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        return {
            str(k): float(v) if isinstance(v, str) and _FLOAT_RE.fullmatch(v.strip()) else v
            for k, v in value.items()
        }
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _dataclass_from_dict(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            raise _unknown_key_error(str(key), where, names)
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}" if where else key)
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a :class:`Config` from plain data (e.g. parsed YAML)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping, got {type(data).__name__}")
    cfg = _dataclass_from_dict(Config, data)
    validate_config(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The configuration as plain data (YAML/JSON serialisable)."""
    return dataclasses.asdict(cfg)


# ---------------------------------------------------------------------------------------
# value checks
# ---------------------------------------------------------------------------------------
def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def validate_config(cfg: Config) -> None:
    """Check values and cross-field constraints; raise :class:`ConfigError`."""
    _require(cfg.task in TASKS, f"task must be one of {TASKS}, got {cfg.task!r}")
    d, g, v, o, t = cfg.data, cfg.degradation, cfg.validation, cfg.optim, cfg.train
    _require(bool(cfg.model.name), "model.name must be a non-empty string")
    _require(d.patch_size >= 4, f"data.patch_size must be >= 4, got {d.patch_size}")
    _require(d.batch_size >= 1, f"data.batch_size must be >= 1, got {d.batch_size}")
    _require(d.num_workers >= 0, f"data.num_workers must be >= 0, got {d.num_workers}")
    _require(d.repeat >= 1, f"data.repeat must be >= 1, got {d.repeat}")
    _require(d.channels in (1, 3), f"data.channels must be 1 or 3, got {d.channels}")
    if g.sigma_range is not None:
        _require(
            len(g.sigma_range) == 2 and 0 <= g.sigma_range[0] <= g.sigma_range[1],
            f"degradation.sigma_range must be [low, high] with 0 <= low <= high, "
            f"got {g.sigma_range}",
        )
    if g.sigma is not None:
        _require(g.sigma >= 0, f"degradation.sigma must be >= 0, got {g.sigma}")
    if cfg.task == "denoise":
        _require(
            (g.sigma is None) != (g.sigma_range is None),
            "task 'denoise' needs exactly one of degradation.sigma (fixed) and "
            "degradation.sigma_range (blind)",
        )
    _require(g.scale >= 1, f"degradation.scale must be >= 1, got {g.scale}")
    if cfg.task == "sr":
        _require(g.scale >= 2, f"task 'sr' needs degradation.scale >= 2, got {g.scale}")
        _require(
            d.patch_size % g.scale == 0,
            f"data.patch_size ({d.patch_size}) must be a multiple of degradation.scale ({g.scale})",
        )
    if cfg.task in ("deblur", "deblur_nonblind"):
        _require(
            g.kernel_size >= 3 and g.kernel_size % 2 == 1,
            f"degradation.kernel_size must be odd and >= 3, got {g.kernel_size}",
        )
        _require(
            g.sigma_range is not None,
            f"task {cfg.task!r} needs degradation.sigma_range (noise after the blur)",
        )
    _require(
        bool(g.kernel_types) and set(g.kernel_types) <= set(KERNEL_TYPES),
        f"degradation.kernel_types must be a non-empty subset of {KERNEL_TYPES}, "
        f"got {g.kernel_types}",
    )
    _require(v.every >= 1, f"validation.every must be >= 1, got {v.every}")
    _require(v.sigma >= 0, f"validation.sigma must be >= 0, got {v.sigma}")
    if v.dir is not None and cfg.task in ("deblur", "deblur_nonblind"):
        _require(v.kernel is not None, f"task {cfg.task!r} needs validation.kernel (a file)")
    if v.max_images is not None:
        _require(v.max_images >= 1, f"validation.max_images must be >= 1, got {v.max_images}")
    _require(o.lr > 0, f"optim.lr must be > 0, got {o.lr}")
    _require(len(o.betas) == 2, f"optim.betas must have two values, got {o.betas}")
    _require(o.loss in LOSSES, f"optim.loss must be one of {LOSSES}, got {o.loss!r}")
    _require(
        list(o.milestones) == sorted(o.milestones),
        f"optim.milestones must be increasing, got {o.milestones}",
    )
    _require(0 < o.gamma <= 1, f"optim.gamma must be in (0, 1], got {o.gamma}")
    _require(o.grad_clip >= 0, f"optim.grad_clip must be >= 0 (0 = off), got {o.grad_clip}")
    _require(0 <= o.ema_decay < 1, f"optim.ema_decay must be in [0, 1), got {o.ema_decay}")
    _require(
        o.amp_dtype in ("bfloat16", "float16"),
        f"optim.amp_dtype must be 'bfloat16' or 'float16', got {o.amp_dtype!r}",
    )
    _require(t.total_steps >= 1, f"train.total_steps must be >= 1, got {t.total_steps}")
    _require(
        t.device == "auto" or t.device == "cpu" or t.device.startswith("cuda"),
        f"train.device must be 'auto', 'cpu' or 'cuda[:N]', got {t.device!r}",
    )
    _require(t.num_threads >= 0, f"train.num_threads must be >= 0, got {t.num_threads}")
    _require(t.log_every >= 1, f"train.log_every must be >= 1, got {t.log_every}")
    _require(
        t.checkpoint_every >= 1, f"train.checkpoint_every must be >= 1, got {t.checkpoint_every}"
    )
    _require(t.keep_last >= 1, f"train.keep_last must be >= 1, got {t.keep_last}")


# ---------------------------------------------------------------------------------------
# overrides and files
# ---------------------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key given twice in one mapping."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"duplicate key {key!r} (line {key_node.start_mark.line + 1}): "
                "each key may appear only once"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override must look like key=value (e.g. optim.lr=2e-4), got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse the value of override {item!r}: {exc}") from None
    if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
        value = float(value)
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to plain config data.

    Keys are checked against the schema so that a typo names the valid keys; keys under
    ``model.options`` are free (they are passed to ``create_model``).
    """
    data = dict(data)
    for item in overrides:
        path, value = _parse_override(item)
        node: dict[str, Any] = data
        cls: Any = Config
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if cls is not None:
                hints = typing.get_type_hints(cls)
                if part not in hints:
                    where = ".".join(path[:depth])
                    raise _unknown_key_error(part, where, hints)
                tp = hints[part]
                cls = tp if dataclasses.is_dataclass(tp) else None
                if not last and cls is None and typing.get_origin(tp) is not dict:
                    raise ConfigError(
                        f"override {item!r}: {'.'.join(path[: depth + 1])} is not a section"
                    )
            if last:
                node[part] = value
            else:
                child = node.get(part)
                child = dict(child) if isinstance(child, Mapping) else {}
                node[part] = child
                node = child
    return data


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML config, apply ``--set`` style overrides and validate it.

    Relative paths inside ``data.train_dirs``, ``validation.dir`` and
    ``validation.kernel`` are kept as written (resolved against the working directory).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.load(f, Loader=_StrictLoader)  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a config must be a YAML mapping, got {type(data).__name__}")
    data = apply_overrides(dict(data), overrides)
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved configuration as YAML (atomically)."""
    from .checkpoint import atomic_write

    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    atomic_write(path, lambda f: f.write(text), mode="w")
