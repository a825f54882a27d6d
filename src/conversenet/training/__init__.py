"""Training: typed configs, on-the-fly degraded patches, the loop, checkpoints, DDP.

>>> from conversenet.training import load_config, train
>>> cfg = load_config("configs/converse_dncnn_s25.yaml", ["train.total_steps=100"])
>>> summary = train(cfg, "runs/dncnn")  # doctest: +SKIP
"""

from .checkpoint import (
    CheckpointError,
    CheckpointManager,
    export_weights,
    load_checkpoint,
    save_checkpoint,
)
from .config import Config, ConfigError, load_config, save_config
from .datasets import PatchDataset, ShardedSampler, augment
from .distributed import DistContext, init_distributed
from .optimisation import no_harm_penalty
from .trainer import ModelEMA, Trainer, build_loss, build_model, train
from .validation import make_protocol, validate

__all__ = [
    "CheckpointError",
    "CheckpointManager",
    "Config",
    "ConfigError",
    "DistContext",
    "ModelEMA",
    "PatchDataset",
    "ShardedSampler",
    "Trainer",
    "augment",
    "build_loss",
    "build_model",
    "export_weights",
    "init_distributed",
    "load_checkpoint",
    "load_config",
    "make_protocol",
    "no_harm_penalty",
    "save_checkpoint",
    "save_config",
    "train",
    "validate",
]
