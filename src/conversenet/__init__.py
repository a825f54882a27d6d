"""conversenet: reverse convolution (Converse2D) and the ConverseNet restoration models."""

from . import functional
from .layers import Converse2D, ConverseBlock, ConverseBlockAlpha, LayerNorm2d

__version__ = "0.1.0"

__all__ = [
    "Converse2D",
    "ConverseBlock",
    "ConverseBlockAlpha",
    "LayerNorm2d",
    "__version__",
    "functional",
]
