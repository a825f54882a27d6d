"""The reverse-convolution operator as pure functions: the public functional API.

Everything here is defined in :mod:`conversenet.operator` (see its modules for the maths)
and re-exported under one name space, kornia-style:

- the paper's parameterisation: :func:`converse1d`, :func:`converse2d`, :func:`converse3d`,
  :func:`converse2d_filter` and the reference :func:`converse2d_literal`;
- the operator parameterised by λ with an explicit :math:`X_0`: :func:`reverse_conv`, its
  reference :func:`reverse_conv_literal`, λ from a noise level
  (:func:`discrepancy_lambda`);
- its forward model and adjoint: :func:`conv_downsample`, :func:`conv_downsample_adjoint`;
- the spectral filter in 1-3 dimensions and its application: :func:`spectral_filter`,
  :func:`apply_spectral_filter` (still importable under their earlier names
  ``spectral_filter_nd`` and ``apply_spectral_filter_nd``/``apply_converse2d_filter``,
  which the reference leaves out; :func:`reverse_conv_filter` is the 2-D filter of λ);
- padding and checks: :func:`pad` (still importable as ``pad_input``), ``PADDING_MODES``,
  :func:`regularizer`, :func:`check_options`, :func:`check_hyperparameters`;
- the export-friendly formulation: :func:`export_friendly`, :func:`is_export_friendly`.
"""

from __future__ import annotations

from .operator import (
    BIAS_SHIFT,
    METHODS,
    PADDING_MODES,
    X0_KINDS,
    apply_spectral_filter,
    check_hyperparameters,
    check_options,
    conv_downsample,
    conv_downsample_adjoint,
    converse1d,
    converse2d,
    converse2d_filter,
    converse2d_literal,
    converse3d,
    discrepancy_lambda,
    export_friendly,
    is_export_friendly,
    pad,
    regularizer,
    reverse_conv,
    reverse_conv_literal,
    spatial_path_applies,
    spectral_filter,
)

# earlier releases' names, importable but left out of __all__ and the reference
from .operator import apply_spectral_filter as apply_converse2d_filter  # noqa: F401
from .operator import apply_spectral_filter as apply_spectral_filter_nd  # noqa: F401
from .operator import pad as pad_input  # noqa: F401
from .operator import spectral_filter as spectral_filter_nd  # noqa: F401
from .operator.spectral import reverse_conv_filter

__all__ = [
    "BIAS_SHIFT",
    "METHODS",
    "PADDING_MODES",
    "X0_KINDS",
    "apply_spectral_filter",
    "check_hyperparameters",
    "check_options",
    "conv_downsample",
    "conv_downsample_adjoint",
    "converse1d",
    "converse2d",
    "converse2d_filter",
    "converse2d_literal",
    "converse3d",
    "discrepancy_lambda",
    "export_friendly",
    "is_export_friendly",
    "pad",
    "regularizer",
    "reverse_conv",
    "reverse_conv_filter",
    "reverse_conv_literal",
    "spatial_path_applies",
    "spectral_filter",
]
