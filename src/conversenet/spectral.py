"""Deprecated alias (kept for one release): the spectral filter is in
:mod:`conversenet.operator.spectral`, the export switch in :mod:`conversenet.operator.fft`;
both are re-exported by :mod:`conversenet.functional`."""

from __future__ import annotations

from ._deprecated import warn_moved
from .operator.checks import pad as pad_input
from .operator.fft import export_friendly, is_export_friendly
from .operator.spectral import apply_spectral_filter as apply_converse2d_filter
from .operator.spectral import reverse_conv_filter

__all__ = [
    "apply_converse2d_filter",
    "export_friendly",
    "is_export_friendly",
    "pad_input",
    "reverse_conv_filter",
]

warn_moved("conversenet.spectral", "conversenet.functional (or conversenet.operator.spectral)")
