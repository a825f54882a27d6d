"""Data utilities: MATLAB-compatible resizing, degradations and blur kernels.

- :mod:`conversenet.data.imresize` — :func:`imresize` (MATLAB bicubic with antialiasing) and
  :func:`bicubic_back_projection` (a super-resolved image made consistent with its input).
- :mod:`conversenet.data.protocol` — the paper's test-time noise, blur and mod-crop.
- :mod:`conversenet.data.degradations` — random blur kernels and the training-time
  :class:`Degradation` family.
- :mod:`conversenet.data.kernels` — :func:`load_kernel` and :func:`paper_kernels`.
"""

from .degradations import (
    DeblurDegradation,
    Degradation,
    DenoiseDegradation,
    SRDegradation,
    random_anisotropic_gaussian_kernel,
    random_motion_kernel,
)
from .imresize import bicubic_back_projection, imresize
from .kernels import load_kernel, paper_kernels
from .protocol import add_gaussian_noise, blur, modcrop

__all__ = [
    "DeblurDegradation",
    "Degradation",
    "DenoiseDegradation",
    "SRDegradation",
    "add_gaussian_noise",
    "bicubic_back_projection",
    "blur",
    "imresize",
    "load_kernel",
    "modcrop",
    "paper_kernels",
    "random_anisotropic_gaussian_kernel",
    "random_motion_kernel",
]
