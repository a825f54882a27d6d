r"""The colour bases in which a gray model restores a colour image: the opponent
channels, and a JPEG's own YCbCr planes.

CBM3D's opponent channels, a luminance and two colour differences, with orthogonal rows:

.. math::

    o = D\,O\,(x - \tfrac12) + \tfrac12, \qquad
    O = \begin{pmatrix} 1/\sqrt3 & 1/\sqrt3 & 1/\sqrt3 \\
                        1/\sqrt2 & 0 & -1/\sqrt2 \\
                        1/\sqrt6 & -2/\sqrt6 & 1/\sqrt6 \end{pmatrix},
    \quad D = \operatorname{diag}(1/\sqrt3, 1, 1),

that is :math:`o_1 = (R + G + B)/3`, :math:`o_2 = (R - B)/\sqrt2 + \frac12`,
:math:`o_3 = (R - 2G + B)/\sqrt6 + \frac12`; inverse :math:`x = O^\top D^{-1} (o - \frac12)
+ \frac12`. The rows of :math:`DO` are orthogonal, so noise that is i.i.d. σ in R, G and
B stays independent in the opponent channels: σ/√3 in the luminance, σ in the two colour
differences. The image does not: its detail gathers in the luminance and the colour
differences are smooth and small, which a gray denoiser restores better than three
similar, correlated R, G, B planes.

The luminance is the mean of R, G and B, not the orthonormal :math:`(R+G+B)/\sqrt3`: that
one spans :math:`[0, \sqrt3]`, and gray models trained on [0, 1] images clip or misjudge
values so far outside (the official Converse-DnCNN maps straight to the clean image in
[0, 1]). Mid-gray stays mid-gray, so every channel stays near [0, 1] (the colour
differences within :math:`\frac12 \pm 2/\sqrt6`, most pixels of natural images close to ½).

A JPEG stores a colour image as JPEG's YCbCr (ITU-T T.871, full range), usually with
Cb and Cr subsampled (4:2:0: averaged over 2×2 pixels) before its quantisation. Noise
added before the compression leaves the file independent of neither pixel nor channel:
white in Y, blotchy in Cb and Cr. :func:`rgb_to_jpeg_ycbcr` recovers those planes (Cb
and Cr centred on ½), so each can be restored as it was stored.

>>> x = torch.rand(2, 3, 4, 5, dtype=torch.float64)
>>> torch.allclose(opponent_to_rgb(rgb_to_opponent(x)), x)
True
>>> torch.allclose(jpeg_ycbcr_to_rgb(rgb_to_jpeg_ycbcr(x)), x)
True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "COLOUR_BASES",
    "JPEG_YCBCR_MATRIX",
    "OPPONENT_MATRIX",
    "gray_model_basis",
    "jpeg_ycbcr_to_rgb",
    "opponent_to_rgb",
    "rgb_to_jpeg_ycbcr",
    "rgb_to_opponent",
]

#: The bases a gray model can restore a colour image in: each R, G, B channel as it is, or
#: the opponent channels of this module.
COLOUR_BASES = ("opponent", "rgb")
#: :math:`DO`: rows luminance (the mean), red − blue and (red + blue) − 2·green, the
#: last two of unit norm.
OPPONENT_MATRIX: tuple[tuple[float, float, float], ...] = (
    (1 / 3, 1 / 3, 1 / 3),
    (1 / math.sqrt(2), 0.0, -1 / math.sqrt(2)),
    (1 / math.sqrt(6), -2 / math.sqrt(6), 1 / math.sqrt(6)),
)
#: JPEG's RGB → YCbCr (ITU-T T.871, full range; Cb and Cr are offset by ½ on [0, 1]).
JPEG_YCBCR_MATRIX: tuple[tuple[float, float, float], ...] = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)
_CENTRE = 0.5  # both transforms are about mid-gray: M (x - ½) + ½ (rows sum to 1, 0, 0)


def gray_model_basis(fixed_sigma: float | None) -> str:
    """The basis of :data:`COLOUR_BASES` in which a gray denoiser restores a colour image:
    ``"rgb"`` for one trained at a single noise level ``fixed_sigma``, ``"opponent"`` for
    a blind one (``fixed_sigma=None``).

    The opponent luminance carries σ/√3 of noise where R, G and B carry σ: a blind model
    adapts and gains (1.2 dB on Set5 at σ 25 for the compact gray denoiser), a model
    trained for σ over-smooths it and loses (0.3 to 1.3 dB for the official
    Converse-DnCNN at σ 25 on Set5).
    """
    return "rgb" if fixed_sigma is not None else "opponent"


def _apply(matrix: Tensor, image: Tensor) -> Tensor:
    if not isinstance(image, Tensor) or image.dim() < 3 or image.shape[-3] != 3:
        raise ValueError(
            "expected an image tensor of shape (*, 3, H, W), got "
            f"{tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__}"
        )
    if not image.is_floating_point():
        raise TypeError(f"expected a floating-point image tensor, got {image.dtype}")
    matrix = matrix.to(device=image.device, dtype=image.dtype)
    return torch.einsum("ij,...jhw->...ihw", matrix, image - _CENTRE).add_(_CENTRE)


def rgb_to_opponent(image: Tensor) -> Tensor:
    r"""RGB in [0, 1] → the opponent channels :math:`DO(x - \frac12) + \frac12`.

    Shape:
        - Input: :math:`(*, 3, H, W)`, floating point; Output: the same.
    """
    return _apply(torch.tensor(OPPONENT_MATRIX, dtype=torch.float64), image)


def opponent_to_rgb(image: Tensor) -> Tensor:
    r"""The opponent channels → RGB, :math:`O^\top D^{-1}(o - \frac12) + \frac12` (not
    clamped).

    Shape:
        - Input: :math:`(*, 3, H, W)`, floating point; Output: the same.
    """
    matrix = torch.tensor(OPPONENT_MATRIX, dtype=torch.float64)
    inverse = matrix.T / (matrix * matrix).sum(dim=1)  # orthogonal rows: Oᵀ D⁻¹ = (DO)ᵀ D⁻²
    return _apply(inverse, image)


def rgb_to_jpeg_ycbcr(image: Tensor) -> Tensor:
    r"""RGB in [0, 1] → JPEG's Y, Cb, Cr (:data:`JPEG_YCBCR_MATRIX`; Cb, Cr + ½).

    Shape:
        - Input: :math:`(*, 3, H, W)`, floating point; Output: the same.
    """
    return _apply(torch.tensor(JPEG_YCBCR_MATRIX, dtype=torch.float64), image)


def jpeg_ycbcr_to_rgb(image: Tensor) -> Tensor:
    """JPEG's Y, Cb, Cr → RGB (not clamped): the inverse of :func:`rgb_to_jpeg_ycbcr`.

    Shape:
        - Input: :math:`(*, 3, H, W)`, floating point; Output: the same.
    """
    return _apply(torch.linalg.inv(torch.tensor(JPEG_YCBCR_MATRIX, dtype=torch.float64)), image)
