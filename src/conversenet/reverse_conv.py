"""Deprecated alias (kept for one release): ``reverse_conv`` and its relatives are in
:mod:`conversenet.operator` and re-exported by :mod:`conversenet.functional`."""

from __future__ import annotations

from ._deprecated import warn_moved
from .operator import (
    BIAS_SHIFT,
    CHUNK_BYTES,
    METHODS,
    PADDING_MODES,
    X0_KINDS,
    check_converse_tensors,
    check_hyperparameters,
    check_options,
    conv_downsample,
    conv_downsample_adjoint,
    converse1d,
    converse3d,
    converse_forward,
    discrepancy_lambda,
    regularizer,
    reverse_conv,
    reverse_conv_literal,
    spatial_path_applies,
)
from .operator import apply_spectral_filter as apply_spectral_filter_nd
from .operator import pad as pad_nd
from .operator import spectral_filter as spectral_filter_nd

__all__ = [
    "BIAS_SHIFT",
    "CHUNK_BYTES",
    "METHODS",
    "PADDING_MODES",
    "X0_KINDS",
    "apply_spectral_filter_nd",
    "check_converse_tensors",
    "check_hyperparameters",
    "check_options",
    "conv_downsample",
    "conv_downsample_adjoint",
    "converse1d",
    "converse3d",
    "converse_forward",
    "discrepancy_lambda",
    "pad_nd",
    "regularizer",
    "reverse_conv",
    "reverse_conv_literal",
    "spatial_path_applies",
    "spectral_filter_nd",
]

warn_moved("conversenet.reverse_conv", "conversenet.functional (or conversenet.operator)")
