"""Deprecated alias (kept for one release): the Converse layers are in
:mod:`conversenet.operator.layers`, the network blocks in :mod:`conversenet.models.blocks`;
all are re-exported by :mod:`conversenet`."""

from __future__ import annotations

from ._deprecated import warn_moved
from .models.blocks import ConverseBlock, ConverseBlockAlpha, LayerNorm2d, TwoBranchBlock
from .operator.layers import Converse2D, ConverseNd

__all__ = [
    "Converse2D",
    "ConverseBlock",
    "ConverseBlockAlpha",
    "ConverseNd",
    "LayerNorm2d",
    "TwoBranchBlock",
]

warn_moved(
    "conversenet.layers",
    "conversenet.operator.layers and conversenet.models.blocks (or conversenet)",
)
