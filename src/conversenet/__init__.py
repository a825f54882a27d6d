"""conversenet: reverse convolution (Converse2D) and the ConverseNet restoration models."""

from . import functional, hub, models
from .inference import restore
from .io import load_image, save_image
from .layers import Converse2D, ConverseBlock, ConverseBlockAlpha, LayerNorm2d
from .models import create_model, get_model_info, list_models
from .runtime import reuse_freed_memory

__version__ = "0.1.0"

__all__ = [
    "Converse2D",
    "ConverseBlock",
    "ConverseBlockAlpha",
    "LayerNorm2d",
    "__version__",
    "create_model",
    "functional",
    "get_model_info",
    "hub",
    "list_models",
    "load_image",
    "models",
    "restore",
    "reuse_freed_memory",
    "save_image",
]
