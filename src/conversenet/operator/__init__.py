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

from . import (
    checks,
    converse,
    fft,
    forward_model,
    layers,
    literal,
    physics,
    solver,
    spatial,
    spectral,
    upsample,
)
from .checks import *  # noqa: F403
from .converse import *  # noqa: F403
from .fft import *  # noqa: F403
from .forward_model import *  # noqa: F403
from .layers import *  # noqa: F403
from .literal import *  # noqa: F403
from .physics import *  # noqa: F403
from .solver import *  # noqa: F403
from .spatial import *  # noqa: F403
from .spectral import *  # noqa: F403
from .upsample import *  # noqa: F403

#: The modules whose public names the package re-exports, in their import order (all but
#: dft, the transforms of exported graphs).
MODULES = (
    checks,
    fft,
    spectral,
    forward_model,
    spatial,
    solver,
    literal,
    converse,
    physics,
    layers,
    upsample,
)
__all__ = [name for module in MODULES for name in module.__all__]
