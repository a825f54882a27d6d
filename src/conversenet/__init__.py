"""conversenet: reverse convolution (Converse2D) and the ConverseNet restoration models."""

from __future__ import annotations

import importlib
from types import ModuleType

from . import functional, models, tasks, weights
from ._version import __version__
from .inference import Restorer, restore
from .io import load_image, save_image
from .models import create_model, get_model_info, list_models
from .models.blocks import ConverseBlock, ConverseBlockAlpha, LayerNorm2d
from .operator import Converse1d, Converse2D, Converse3d, ConverseUpsample
from .runtime import reuse_freed_memory
from .samples import sample_image

__all__ = [
    "Converse1d",
    "Converse2D",
    "Converse3d",
    "ConverseBlock",
    "ConverseBlockAlpha",
    "ConverseUpsample",
    "LayerNorm2d",
    "Restorer",
    "__version__",
    "create_model",
    "functional",
    "get_model_info",
    "list_models",
    "load_image",
    "models",
    "restore",
    "reuse_freed_memory",
    "sample_image",
    "save_image",
    "tasks",
    "weights",
]


def __getattr__(name: str) -> ModuleType:
    # `conversenet.hub` is a deprecated alias, imported (and warning) only when used
    if name == "hub":
        return importlib.import_module(".hub", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
