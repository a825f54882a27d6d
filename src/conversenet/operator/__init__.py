r"""The reverse-convolution operator: Converse2D and its generalisations, as pure functions,
layers and a deepinv-style physics.

Modules, in the order they import one another:

- :mod:`~conversenet.operator.checks`: argument checks, padding, the parameterisation's
  constants (``PADDING_MODES``, ``regularizer``);
- :mod:`~conversenet.operator.fft`: the FFT engine (which library runs the transforms) and
  the export-friendly switch; :mod:`~conversenet.operator.dft`: the matrix-product DFTs of
  exported graphs;
- :mod:`~conversenet.operator.spectral`: the spectral filter in 1-3 dimensions, built from
  small DFTs and decimated spectra, and its application;
- :mod:`~conversenet.operator.forward_model`: :math:`A` (``conv_downsample``) and
  :math:`A^\top`; :mod:`~conversenet.operator.spatial`: the exact spatial path;
- :mod:`~conversenet.operator.solver`: ``reverse_conv`` (λ, explicit :math:`X_0`), the
  shared body, channel chunks, ``discrepancy_lambda``;
- :mod:`~conversenet.operator.literal`: the paper's formula step by step (the reference);
- :mod:`~conversenet.operator.converse`: the paper's parameterisation
  (``converse1d/2d/3d``, ``converse2d_filter``);
- :mod:`~conversenet.operator.physics`: ``ConvDownsample`` (``A``, ``A_adjoint``,
  ``prox_l2``);
- :mod:`~conversenet.operator.layers`: ``Converse1d``, ``Converse2D``, ``Converse3d``;
  :mod:`~conversenet.operator.upsample`: ``ConverseUpsample``.

:mod:`conversenet.functional` is the public face of the pure functions.
"""

from __future__ import annotations

from .checks import (
    BIAS_SHIFT,
    METHODS,
    PADDING_MODES,
    X0_KINDS,
    check_converse_tensors,
    check_hyperparameters,
    check_options,
    pad,
    regularizer,
)
from .converse import (
    converse1d,
    converse2d,
    converse2d_filter,
    converse2d_literal,
    converse3d,
    converse_filter,
    converse_forward,
)
from .fft import export_friendly, is_export_friendly
from .forward_model import conv_downsample, conv_downsample_adjoint
from .layers import Converse1d, Converse2D, Converse3d, ConverseNd
from .literal import reverse_conv_literal
from .physics import ConvDownsample
from .solver import discrepancy_lambda, reverse_conv
from .spatial import spatial_path_applies
from .spectral import apply_spectral_filter, spectral_filter
from .upsample import ConverseUpsample, SumToOne

__all__ = [
    "BIAS_SHIFT",
    "METHODS",
    "PADDING_MODES",
    "X0_KINDS",
    "ConvDownsample",
    "Converse1d",
    "Converse2D",
    "Converse3d",
    "ConverseNd",
    "ConverseUpsample",
    "SumToOne",
    "apply_spectral_filter",
    "check_converse_tensors",
    "check_hyperparameters",
    "check_options",
    "conv_downsample",
    "conv_downsample_adjoint",
    "converse1d",
    "converse2d",
    "converse2d_filter",
    "converse2d_literal",
    "converse3d",
    "converse_filter",
    "converse_forward",
    "discrepancy_lambda",
    "export_friendly",
    "is_export_friendly",
    "pad",
    "regularizer",
    "reverse_conv",
    "reverse_conv_literal",
    "spatial_path_applies",
    "spectral_filter",
]
