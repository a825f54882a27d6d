"""Deprecated alias of :mod:`conversenet.weights` (kept for one release; it will be removed).

``conversenet.hub`` was a local weight-file resolver, not a hub. Use
:mod:`conversenet.weights` and :func:`conversenet.create_model` instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .models.registry import ModelInfo, get_model_info
from .weights import (
    ENV_WEIGHTS,
    PACKAGED_WEIGHTS_DIR,
    PretrainedWeights,
    WeightsChecksumError,
    WeightsNotFoundError,
    cache_dir,
    download_weights,
    load_state_dict,
    load_weights_into,
    sha256sum,
    weights_dir_candidates,
)
from .weights import resolve_weights as _resolve_weights

__all__ = [
    "ENV_WEIGHTS",
    "PACKAGED_WEIGHTS_DIR",
    "WeightsChecksumError",
    "WeightsNotFoundError",
    "cache_dir",
    "download_weights",
    "load_state_dict",
    "load_weights_into",
    "resolve_weights",
    "sha256sum",
    "weights_dir_candidates",
]

warnings.warn(
    "conversenet.hub is deprecated and will be removed in the next release; "
    "use conversenet.weights (and create_model(..., pretrained=True))",
    DeprecationWarning,
    stacklevel=2,
)


def resolve_weights(
    name_or_info: str | ModelInfo | PretrainedWeights,
    path: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """:func:`conversenet.weights.resolve_weights`, also taking a model name or ModelInfo."""
    if isinstance(name_or_info, str):
        name_or_info = get_model_info(name_or_info)
    weights = name_or_info.pretrained if isinstance(name_or_info, ModelInfo) else name_or_info
    if weights is None and path is None:
        raise ValueError(f"{name_or_info!r} has no published weights; give a path")
    return _resolve_weights(weights, path=path, download=download, progress=progress)
