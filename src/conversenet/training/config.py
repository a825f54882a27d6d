"""The training configuration: typed sections, each with the checks of its own fields.

A configuration file is a YAML mapping with the sections ``model``, ``data``,
``degradation``, ``validation``, ``optim`` and ``train`` plus the top-level ``task``.
Every key is checked (:mod:`conversenet.training.typed_yaml`): an unknown or misspelt key
is a :class:`ConfigError` that names the key, the valid keys of its section and the
closest match; a value of the wrong type is a :class:`ConfigError` naming the expected and
the given type; each section's ``validate`` checks its values, and :meth:`Config.validate`
the rules that join sections (which task needs which settings).

Example:
    >>> cfg = load_config("configs/converse_dncnn_s25.yaml", overrides=["optim.lr=2e-4"])
    >>> cfg.optim.lr
    0.0002
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..tasks import TASKS
from .checkpoint import SMALL_CONTENTS, atomic_write
from .typed_yaml import ConfigError, from_dict, load_yaml
from .typed_yaml import apply_overrides as _apply_overrides

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

LOSSES = ("l1", "l2", "charbonnier")
KERNEL_TYPES = ("gaussian", "motion", "wide_motion", "shake", "heavy_shake")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass
class ModelConfig:
    """Which network to train: a registry name and keyword overrides for ``create_model``.

    ``init_weights`` starts a new run from trained weights instead of random ones
    (fine-tuning): a weights file (``.safetensors``, ``.pth``) or ``pretrained`` (the
    registered weights of ``name``). A run resuming from its checkpoint ignores it.
    """

    name: str = "converse_dncnn"
    options: dict[str, Any] = field(default_factory=dict)
    init_weights: str | None = None

    def validate(self) -> None:
        _require(bool(self.name), "model.name must be a non-empty string")
        _require(
            self.init_weights is None or bool(self.init_weights),
            "model.init_weights must be a weights file, 'pretrained' or null, got ''",
        )


@dataclass
class DataConfig:
    """Training images and how patches are drawn from them.

    ``patch_size`` is the side of the *target* (high-resolution) patch; for super-resolution
    the input patch is ``patch_size // scale``. ``batch_size`` is the global batch, split
    evenly across data-parallel ranks. One epoch visits ``repeat`` patches per image.
    Unreadable images are an error naming them, unless ``skip_unreadable``.
    """

    train_dirs: list[str] = field(default_factory=list)
    patch_size: int = 40
    batch_size: int = 16
    num_workers: int = 2
    repeat: int = 1
    channels: int = 1
    cache_images: bool = True
    skip_unreadable: bool = False

    def validate(self) -> None:
        _require(self.patch_size >= 4, f"data.patch_size must be >= 4, got {self.patch_size}")
        _require(self.batch_size >= 1, f"data.batch_size must be >= 1, got {self.batch_size}")
        _require(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        _require(self.repeat >= 1, f"data.repeat must be >= 1, got {self.repeat}")
        _require(self.channels in (1, 3), f"data.channels must be 1 or 3, got {self.channels}")


@dataclass
class DegradationConfig:
    """On-the-fly degradation of the clean patches (sigmas on the [0, 255] scale).

    Denoising: ``sigma`` (fixed) or ``sigma_range`` (uniform). Super-resolution: ``scale``
    (MATLAB bicubic, low-resolution input kept in float). Deblurring: a random kernel of
    side ``kernel_size`` drawn uniformly among ``kernel_types`` (``gaussian``: anisotropic
    Gaussian, ``motion``: camera shake with its centroid centred, ``wide_motion``: longer
    and thicker shake drawn at 4x and summed, its support centred like the paper's
    kernels; ``shake``: ``wide_motion`` with uneven exposure along the path and a random
    thickness, so one end is heavier and the centroid further off, as in the paper's
    kernels 2, 4 and 5; ``heavy_shake``: ``shake`` with up to e⁸ instead of e⁴ between
    the ends, so the centroid is more than a pixel off in 38% of the kernels instead of
    20%, as in kernels 4 and 5), wrap boundary, then noise with sigma uniform in
    ``sigma_range``; ``deblur_nonblind`` also feeds the kernel to the model. Deblurring
    may add grain to the clean patch first, sigma uniform in ``grain_range`` (it stays in
    the target, as the sensor grain of real photos; see
    :class:`~conversenet.data.degradations.DeblurDegradation`).
    """

    sigma: float | None = None
    sigma_range: list[float] | None = None
    scale: int = 1
    kernel_size: int = 7
    kernel_types: list[str] = field(default_factory=lambda: ["gaussian", "motion"])
    grain_range: list[float] | None = None

    def validate(self) -> None:
        for name in ("sigma_range", "grain_range"):
            levels = getattr(self, name)
            _require(
                levels is None or (len(levels) == 2 and 0 <= levels[0] <= levels[1]),
                f"degradation.{name} must be [low, high] with 0 <= low <= high, got {levels}",
            )
        if self.sigma is not None:
            _require(self.sigma >= 0, f"degradation.sigma must be >= 0, got {self.sigma}")
        _require(self.scale >= 1, f"degradation.scale must be >= 1, got {self.scale}")
        _require(
            bool(self.kernel_types) and set(self.kernel_types) <= set(KERNEL_TYPES),
            f"degradation.kernel_types must be a non-empty subset of {KERNEL_TYPES}, "
            f"got {self.kernel_types}",
        )


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

    def validate(self) -> None:
        _require(self.every >= 1, f"validation.every must be >= 1, got {self.every}")
        _require(self.sigma >= 0, f"validation.sigma must be >= 0, got {self.sigma}")
        if self.max_images is not None:
            _require(
                self.max_images >= 1,
                f"validation.max_images must be >= 1, got {self.max_images}",
            )


@dataclass
class OptimConfig:
    """Adam, the loss, the multi-step schedule (milestones in steps), clipping, EMA, AMP.

    ``warm_restart_steps``: when a run resumes from a checkpoint without Adam's moments (a
    small checkpoint), the learning rate ramps up linearly over this many steps.

    ``no_harm_weight``: weight of :func:`~conversenet.training.no_harm_penalty`
    added to the loss (0 = off): how many dB each patch is worse than its degraded input.
    Only for tasks whose input and target have one size (``denoise``, ``deblur``).
    """

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
    warm_restart_steps: int = 200
    no_harm_weight: float = 0.0

    def validate(self) -> None:
        _require(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        _require(len(self.betas) == 2, f"optim.betas must have two values, got {self.betas}")
        _require(self.loss in LOSSES, f"optim.loss must be one of {LOSSES}, got {self.loss!r}")
        _require(
            list(self.milestones) == sorted(self.milestones),
            f"optim.milestones must be increasing, got {self.milestones}",
        )
        _require(0 < self.gamma <= 1, f"optim.gamma must be in (0, 1], got {self.gamma}")
        _require(
            self.grad_clip >= 0, f"optim.grad_clip must be >= 0 (0 = off), got {self.grad_clip}"
        )
        _require(
            0 <= self.ema_decay < 1, f"optim.ema_decay must be in [0, 1), got {self.ema_decay}"
        )
        _require(
            self.amp_dtype in ("bfloat16", "float16"),
            f"optim.amp_dtype must be 'bfloat16' or 'float16', got {self.amp_dtype!r}",
        )
        _require(
            self.warm_restart_steps >= 0,
            f"optim.warm_restart_steps must be >= 0, got {self.warm_restart_steps}",
        )
        _require(
            self.no_harm_weight >= 0,
            f"optim.no_harm_weight must be >= 0 (0 = off), got {self.no_harm_weight}",
        )


@dataclass
class TrainConfig:
    """Length of the run, seeding, logging, checkpointing and export.

    ``small_checkpoint``: with every checkpoint, also write ``last_small.pt``, the state
    small enough to commit (``weights``: weights and EMA in float16, no optimiser moments;
    ``weights+moments``: also Adam's moments in bfloat16; ``off``: none).

    ``time_limit_minutes``: stop this sitting once it has trained that long (0: no limit):
    the run validates, saves a checkpoint and exports the weights so far, and a later
    ``--resume`` continues it (for sessions or jobs with a fixed budget).
    """

    total_steps: int = 1000
    seed: int = 0
    device: str = "auto"
    num_threads: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    keep_last: int = 3
    small_checkpoint: str = "weights"
    tensorboard: bool = True
    progress_bar: bool = True
    export_ema: bool = True
    out_dir: str | None = None
    time_limit_minutes: float = 0.0

    def validate(self) -> None:
        _require(self.total_steps >= 1, f"train.total_steps must be >= 1, got {self.total_steps}")
        _require(
            self.time_limit_minutes >= 0,
            f"train.time_limit_minutes must be >= 0 (0: no limit), got {self.time_limit_minutes}",
        )
        _require(
            self.device in ("auto", "cpu") or self.device.startswith("cuda"),
            f"train.device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}",
        )
        _require(self.num_threads >= 0, f"train.num_threads must be >= 0, got {self.num_threads}")
        _require(self.log_every >= 1, f"train.log_every must be >= 1, got {self.log_every}")
        _require(
            self.checkpoint_every >= 1,
            f"train.checkpoint_every must be >= 1, got {self.checkpoint_every}",
        )
        _require(self.keep_last >= 1, f"train.keep_last must be >= 1, got {self.keep_last}")
        _require(
            self.small_checkpoint in SMALL_CONTENTS,
            f"train.small_checkpoint must be one of {SMALL_CONTENTS}, "
            f"got {self.small_checkpoint!r}",
        )


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

    def validate(self) -> None:
        """Check every section, then what the task needs of them; raise :class:`ConfigError`."""
        _require(self.task in TASKS, f"task must be one of {TASKS}, got {self.task!r}")
        for section in (
            self.model,
            self.data,
            self.degradation,
            self.validation,
            self.optim,
            self.train,
        ):
            section.validate()
        g, v = self.degradation, self.validation
        if self.task == "denoise":
            _require(
                (g.sigma is None) != (g.sigma_range is None),
                "task 'denoise' needs exactly one of degradation.sigma (fixed) and "
                "degradation.sigma_range (blind)",
            )
        if self.task == "sr":
            _require(g.scale >= 2, f"task 'sr' needs degradation.scale >= 2, got {g.scale}")
            _require(
                self.data.patch_size % g.scale == 0,
                f"data.patch_size ({self.data.patch_size}) must be a multiple of "
                f"degradation.scale ({g.scale})",
            )
            _require(
                self.optim.no_harm_weight == 0,
                "optim.no_harm_weight compares the output with an input of the same size; "
                f"task 'sr' upscales (got no_harm_weight {self.optim.no_harm_weight})",
            )
        _require(
            g.grain_range is None or self.task in ("deblur", "deblur_nonblind"),
            f"degradation.grain_range is grain in the target of deblurring; task {self.task!r} "
            f"has none (got grain_range {g.grain_range})",
        )
        if self.task in ("deblur", "deblur_nonblind"):
            _require(
                g.kernel_size >= 3 and g.kernel_size % 2 == 1,
                f"degradation.kernel_size must be odd and >= 3, got {g.kernel_size}",
            )
            _require(
                g.sigma_range is not None,
                f"task {self.task!r} needs degradation.sigma_range (noise after the blur)",
            )
            if v.dir is not None:
                _require(
                    v.kernel is not None, f"task {self.task!r} needs validation.kernel (a file)"
                )


def validate_config(cfg: Config) -> None:
    """Check values and cross-field constraints; raise :class:`ConfigError`."""
    cfg.validate()


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a :class:`Config` from plain data (e.g. parsed YAML)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a mapping, got {type(data).__name__}")
    cfg = from_dict(Config, data)
    cfg.validate()
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The configuration as plain data (YAML/JSON serialisable)."""
    return dataclasses.asdict(cfg)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to plain config data.

    Keys are checked against the schema so that a typo names the valid keys; keys under
    ``model.options`` are free (they are passed to ``create_model``).
    """
    return _apply_overrides(Config, data, overrides)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a YAML config, apply ``--set`` style overrides and validate it.

    Relative paths inside ``data.train_dirs``, ``validation.dir`` and
    ``validation.kernel`` are kept as written (resolved against the working directory).
    """
    path = Path(path)
    if path.is_dir():
        hint = "e.g. configs/compact_denoiser_blind.yaml"
        if (path / "config.yaml").is_file():
            hint = (
                f"this looks like a run folder: to continue its run, pass {path / 'config.yaml'} "
                f"with --out {path}"
            )
        raise ConfigError(f"expected a YAML config file, got the folder {path} ({hint})")
    data = apply_overrides(load_yaml(path), overrides)
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved configuration as YAML (atomically)."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    atomic_write(path, lambda f: f.write(text), mode="w")
