"""Classical non-blind deconvolution from the reverse-convolution operator: the
Wiener/Tikhonov baseline that the learned non-blind models are compared against.

.. math::

    X^\\star = \\arg\\min_X \\|y - (X\\otimes k)\\downarrow_{sf}\\|^2
        + \\lambda\\|X - X_0\\|^2

per image and colour channel, under circular boundaries (the deblurring protocol blurs
with ``mode="wrap"``, so the model of the degradation is exact), in closed form by
:func:`conversenet.functional.reverse_conv`. No trainable parameters, no weights file.

**Choosing λ.** The least-squares problem is the MAP estimate for Gaussian noise of
variance :math:`\\sigma^2` and the prior :math:`X \\sim \\mathcal N(X_0, P\\,I)`, for which
:math:`\\lambda = \\sigma^2 / P`: the noise power over the power of what the prior leaves
unexplained. :math:`P` is not known; it is fixed by requiring that the estimate explain
the observation exactly to the noise level, :math:`\\frac1n\\|y - A X^\\star\\|^2 =
\\sigma^2` (Morozov's discrepancy principle, solved per image and channel by
:func:`~conversenet.functional.discrepancy_lambda`), with :math:`\\sigma` the known noise
level (2.55/255 in the protocol). With :math:`X_0` the blurred input the prior
power is that of the detail the blur removed, which this choice measures on the image
itself; a zero :math:`X_0` is the textbook Tikhonov filter.

**A kernel that cannot explain the image** (a 25×25 box given for a 7×7 blur) drives the
discrepancy principle to a vanishing λ and the result to amplified noise (5 dB). Such a
kernel is recognised by :func:`kernel_misfit`: the least-regularised solution whose noise
gain stays bounded (λ = ``FIT_LAMBDA``) still leaves a residual far above the noise level.
:class:`~conversenet.inference.Restorer` refuses such a kernel, for every non-blind model
(:func:`check_kernel_explains`).
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor, nn

from ..checks import check_choice, check_int, check_real
from ..functional import conv_downsample, discrepancy_lambda, reverse_conv
from ..operator.checks import check_blur_kernel
from .blind_deconv import central_crop, estimate_noise_level

__all__ = [
    "FIT_LAMBDA",
    "FIT_SIDE",
    "MISFIT_LIMIT",
    "WIENER_X0",
    "WienerDeconvolution",
    "check_kernel_explains",
    "kernel_misfit",
]

#: λ at which the fit of a kernel is judged: the noise gain of the solution stays below
#: about 1/(2√λ) ≈ 16.
FIT_LAMBDA = 1e-3
#: A kernel whose fit leaves a residual above this many noise levels does not explain the
#: image. Measured at σ 2.55 on two photos: the right kernel (the paper's five, four of
#: USRNet's) leaves 0.02 to 0.92; a 25×25 box for those blurs 2.2 to 4.2. A milder
#: mismatch (a 9×9 box for a 7×7 blur: 0.9 to 1.6) passes, and at σ 10 so does the box.
MISFIT_LIMIT = 2.0
#: The fit is judged on a central crop at most this large (time and memory stay bounded).
FIT_SIDE = 1024
#: The noise level assumed is at least this (on [0, 1]): a clean image is not held to zero.
MIN_NOISE = 1 / 255

#: Initial estimates of the Wiener model: the (upsampled) blurred input, or zero.
WIENER_X0 = ("blurred", "zero")


class WienerDeconvolution(nn.Module):
    """Wiener/Tikhonov deconvolution: ``model(x, kernel, sf=1)``, no parameters.

    Args:
        in_channels: image channels (every channel is deconvolved alike).
        noise_level: σ of the noise on the [0, 255] scale (the protocol's 2.55).
        x0: ``"blurred"``, the input itself (nearest-upsampled when ``sf > 1``: the
            reverse convolution's own :math:`X_0`), or ``"zero"``.
        lam: a fixed λ > 0 instead of the discrepancy principle.

    Shape:
        - x: :math:`(N, C, H, W)` in [0, 1]; kernel: :math:`(N \\text{ or } 1, 1, k, k)` or
          :math:`(k, k)`, summing to 1; output: :math:`(N, C, sf\\,H, sf\\,W)`.

    Example:
        >>> model = WienerDeconvolution()
        >>> model(torch.rand(1, 3, 32, 32), torch.full((1, 1, 5, 5), 1 / 25)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 3,
        noise_level: float = 2.55,
        x0: str = "blurred",
        lam: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.noise_level = check_real("noise_level", noise_level, minimum=0)
        self.x0 = check_choice("x0", x0, WIENER_X0)
        if lam is not None and check_real("lam", lam) <= 0:
            raise ValueError(f"lam must be > 0 or None (the discrepancy principle), got {lam}")
        self.lam = lam

    def extra_repr(self) -> str:
        lam = "discrepancy principle" if self.lam is None else f"{self.lam:g}"
        return f"{self.in_channels}, noise_level={self.noise_level:g}, x0={self.x0!r}, lam={lam}"

    def _kernels(self, kernel: Tensor, x: Tensor) -> Tensor:
        kernel = check_blur_kernel(kernel, x)
        dtype = x.dtype if x.is_floating_point() else torch.float32
        return kernel.to(device=x.device, dtype=dtype).expand(-1, x.shape[1], -1, -1)

    def forward(self, x: Tensor, kernel: Tensor, sf: int = 1) -> Tensor:
        if isinstance(sf, bool) or not isinstance(sf, numbers.Integral) or sf < 1:
            raise ValueError(f"sf must be an integer >= 1, got {sf!r}")
        if not isinstance(x, Tensor) or x.dim() != 4:
            raise ValueError(f"x must be a 4-D tensor (N, C, H, W), got {getattr(x, 'shape', x)}")
        kernels = self._kernels(kernel, x)
        x0 = None if self.x0 == "blurred" else "zero"
        lam = self.lam
        if lam is None:
            lam = discrepancy_lambda(x, kernels, self.noise_level / 255.0, int(sf), x0)
        return reverse_conv(x, kernels, lam, int(sf), 0, "circular", x0)


def kernel_misfit(y: Tensor, kernel: Tensor, noise_std: float | None = None) -> Tensor:
    r"""How far ``kernel`` is from explaining ``y``: the RMS of :math:`y - k\otimes X^\star`
    over the noise level, :math:`X^\star` = ``reverse_conv(y, k, FIT_LAMBDA)`` (the
    least-regularised solution with a bounded noise gain), away from a band of the kernel's
    size along the borders (a photo is not circular).

    Args:
        y: the blurred image :math:`(N, C, H, W)`, values in [0, 1].
        kernel: :math:`(k, k)`, summing to 1.
        noise_std: σ in the units of ``y``; ``None`` estimates it
            (:func:`~conversenet.models.blind_deconv.estimate_noise_level`), at least
            ``MIN_NOISE``.

    Returns:
        The ratio per image, :math:`(N,)`; about 1 or less for the right kernel.
    """
    y = y.float() if not y.is_floating_point() or y.dtype in (torch.half, torch.bfloat16) else y
    kernels = kernel.to(y).reshape(1, 1, *kernel.shape[-2:]).expand(1, y.shape[1], -1, -1)
    restored = reverse_conv(y, kernels, FIT_LAMBDA, 1, 0, "circular", None)
    residual = conv_downsample(restored, kernels, 1) - y
    band = max(kernel.shape[-2:])
    if min(residual.shape[-2:]) > 2 * band:
        residual = residual[..., band:-band, band:-band]
    if noise_std is None:
        noise = estimate_noise_level(y).clamp(min=MIN_NOISE)
    else:
        noise = torch.full(y.shape[:1], max(float(noise_std), MIN_NOISE)).to(y)
    return residual.square().mean(dim=(1, 2, 3)).sqrt() / noise


def check_kernel_explains(y: Tensor, kernel: Tensor) -> None:
    """``ValueError`` when ``kernel`` cannot explain the image ``y`` :math:`(1, C, H, W)`
    (:func:`kernel_misfit` above ``MISFIT_LIMIT``, on a central crop of at most
    ``FIT_SIDE`` a side). Images not larger than three kernels a side are not judged."""
    if min(y.shape[-2:]) <= 3 * max(kernel.shape[-2:]):
        return
    ratio = float(kernel_misfit(central_crop(y, FIT_SIDE), kernel).max())
    if ratio > MISFIT_LIMIT:
        raise ValueError(
            f"the {kernel.shape[-2]}x{kernel.shape[-1]} blur kernel does not explain this "
            f"image: deconvolving with it (noise amplification bounded) leaves a residual "
            f"{ratio:.1f} times the noise level (a kernel that fits leaves under 1, the "
            f"limit is {MISFIT_LIMIT:g}), so the result would be noise. The kernel is wrong "
            "(too large, or of another shape or orientation): check it, or leave it out "
            "for blind deblurring"
        )
