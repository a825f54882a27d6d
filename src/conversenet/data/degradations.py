"""On-the-fly training degradations: random blur kernels and the :class:`Degradation` family.

Everything is drawn from an explicit random source (a numpy ``Generator``) so that
data-loader workers are reproducible and independent: :func:`random_anisotropic_gaussian_kernel`,
:func:`random_motion_kernel` and the :class:`Degradation` family
(:class:`DenoiseDegradation`, :class:`SRDegradation`, :class:`DeblurDegradation`), which
turn a clean HR patch into ``(lq, hq[, kernel])`` tensors. The paper's test-time
degradations are in :mod:`conversenet.data.protocol`.

Noise levels ``sigma`` are always on the 0–255 scale, as in the paper (σ = 25, 2.55).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from ..checks import check_choice, check_int, check_real
from ..tensors import chw_to_hwc, image_to_tensor, tensor_to_image
from .imresize import imresize
from .protocol import blur, check_kernel, modcrop

__all__ = [
    "DeblurDegradation",
    "Degradation",
    "DenoiseDegradation",
    "SRDegradation",
    "random_anisotropic_gaussian_kernel",
    "random_motion_kernel",
]

SeedLike = int | np.random.Generator | None
KernelSource = Callable[[np.random.Generator], np.ndarray] | np.ndarray


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _as_generator(rng: SeedLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _check_sigma(sigma, name: str = "sigma") -> tuple[float, float]:
    """A noise level (number) or range ``(low, high)`` on the 0-255 scale → (low, high)."""
    if isinstance(sigma, numbers.Real) and not isinstance(sigma, bool):
        low = high = float(sigma)
    elif isinstance(sigma, Sequence) and len(sigma) == 2:
        if not all(isinstance(s, numbers.Real) and not isinstance(s, bool) for s in sigma):
            raise TypeError(f"{name} range must hold two numbers, got {sigma!r}")
        low, high = float(sigma[0]), float(sigma[1])
    else:
        raise TypeError(f"{name} must be a number or a (low, high) pair, got {sigma!r}")
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
        raise ValueError(f"{name} must satisfy 0 <= low <= high (finite), got {sigma!r}")
    return low, high


def _format_level(levels: tuple[float, float]) -> str:
    """A fixed level as ``5``, a range as ``(0, 2.55)``."""
    low, high = levels
    return f"{low:g}" if low == high else f"({low:g}, {high:g})"


def _to_chw(img) -> Tensor:
    """A clean image → float32 (C, H, W) tensor in [0, 1] (uint8 numpy is divided by 255)."""
    if isinstance(img, Tensor):
        if img.dim() == 2:
            img = img[None]
        if img.dim() != 3:
            raise ValueError(f"tensor image must be (C, H, W) or (H, W), got {tuple(img.shape)}")
        if not img.is_floating_point():
            raise TypeError(f"tensor image must be floating point in [0, 1], got {img.dtype}")
        return img.to(torch.float32)
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"numpy image must be HxW or HxWxC, got shape {img.shape}")
        if img.dtype != np.uint8 and not np.issubdtype(img.dtype, np.floating):
            raise TypeError(f"numpy image must be uint8 or float in [0, 1], got {img.dtype}")
        return image_to_tensor(img)[0]
    raise TypeError(f"image must be a numpy array or a tensor, got {type(img).__name__}")


# ---------------------------------------------------------------------------------------
# random blur kernels for training
# ---------------------------------------------------------------------------------------
def random_anisotropic_gaussian_kernel(
    size: int = 25,
    rng: SeedLike = None,
    *,
    variance_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """A random anisotropic Gaussian blur kernel (the Gaussian half of USRNet's training set).

    The covariance is ``R(θ) diag(λ1, λ2) R(θ)ᵀ`` with the two variances λ drawn uniformly
    from ``variance_range`` and the angle θ uniformly from ``[0, π)``; the kernel is
    ``exp(-½ zᵀ Σ⁻¹ z)`` on the ``size × size`` grid centred at ``((size-1)/2, (size-1)/2)``,
    normalised to sum 1. USRNet draws λ in ``[0.6, 12]`` for 25×25 kernels; the default
    range scales that linearly with the size, ``(0.6, 12) · size/25`` (for the 7×7 kernels
    of the paper's deblurring models: ``[0.168, 3.36]``, standard deviations 0.41–1.83 px).

    A numpy ``Generator`` (or a seed for one) is used rather than numpy's global state so
    that kernels are reproducible per worker and independent across workers.

    Shape:
        - Output: :math:`(size, size)`, float64, non-negative, sums to 1.
    """
    size = check_int("size", size, minimum=1)
    rng = _as_generator(rng)
    if variance_range is None:
        variance_range = (0.6 * size / 25.0, 12.0 * size / 25.0)
    low, high = (float(v) for v in variance_range)
    if not 0 < low <= high:
        raise ValueError(f"variance_range must satisfy 0 < low <= high, got {variance_range!r}")
    lambda1, lambda2 = rng.uniform(low, high, size=2)
    theta = rng.uniform(0.0, np.pi)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    inv_cov = rotation @ np.diag([1.0 / lambda1, 1.0 / lambda2]) @ rotation.T
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    x, y = np.meshgrid(coords, coords)  # x: column offset, y: row offset
    quad = inv_cov[0, 0] * x * x + 2 * inv_cov[0, 1] * x * y + inv_cov[1, 1] * y * y
    kernel = np.exp(-0.5 * quad)
    return kernel / kernel.sum()


def _shake_path(length: float, steps: int, rng: np.random.Generator) -> np.ndarray:
    """A camera-shake trajectory of ``length`` pixels in ``steps`` points, as complex
    numbers (Boracchi & Foi's model; see :func:`random_motion_kernel`)."""
    anxiety = 0.005 * rng.uniform()
    centripetal = 0.7 * rng.uniform()
    gaussian_term = 10.0 * rng.uniform()
    shake_frequency = 0.2 * rng.uniform()
    step_length = length / (steps - 1)
    velocity = np.exp(1j * rng.uniform(0.0, 2.0 * np.pi)) * step_length
    path = np.zeros(steps, dtype=np.complex128)
    shakes = rng.uniform(size=steps) < shake_frequency * anxiety
    shake_angles = np.pi + (rng.uniform(size=steps) - 0.5)
    perturbations = rng.standard_normal(steps) + 1j * rng.standard_normal(steps)
    for t in range(steps - 1):
        dv = anxiety * (gaussian_term * perturbations[t] - centripetal * path[t]) * step_length
        if shakes[t]:
            dv = dv + 2.0 * velocity * np.exp(1j * shake_angles[t])
        velocity = velocity + dv
        speed = abs(velocity)
        velocity = velocity / speed * step_length if speed > 0 else velocity
        path[t + 1] = path[t] + velocity
    return path


def _rasterise(path: np.ndarray, dwell: np.ndarray, size: int, centre: str) -> np.ndarray:
    """The ``size × size`` image of a complex ``path`` whose points weigh ``dwell``, with
    bilinear weights, after moving its centroid or its extent's middle to the box centre
    (as far as the box allows); not normalised."""
    middle_of_box = (size - 1) / 2.0
    shifted = []
    for coord in (path.imag, path.real):  # rows, then columns
        if centre == "centroid":
            middle = np.average(coord, weights=dwell)
        else:
            middle = (coord.min() + coord.max()) / 2
        shift = middle_of_box - middle
        # keep the whole path inside [0, size - 1]
        shift = min(max(shift, -coord.min()), (size - 1) - coord.max())
        shifted.append(coord + shift)
    rows, cols = shifted
    kernel = np.zeros((size + 1, size + 1), dtype=np.float64)
    r0 = np.clip(np.floor(rows).astype(np.int64), 0, size - 1)
    c0 = np.clip(np.floor(cols).astype(np.int64), 0, size - 1)
    fr, fc = np.clip(rows - r0, 0.0, 1.0), np.clip(cols - c0, 0.0, 1.0)
    np.add.at(kernel, (r0, c0), dwell * (1 - fr) * (1 - fc))
    np.add.at(kernel, (r0 + 1, c0), dwell * fr * (1 - fc))
    np.add.at(kernel, (r0, c0 + 1), dwell * (1 - fr) * fc)
    np.add.at(kernel, (r0 + 1, c0 + 1), dwell * fr * fc)
    return kernel[:size, :size]


def random_motion_kernel(
    size: int = 25,
    rng: SeedLike = None,
    *,
    length_range: tuple[float, float] = (0.4, 1.0),
    steps: int = 2000,
    centre: str = "centroid",
    supersample: int = 1,
    uneven_exposure: float = 0.0,
    thickness: float = 0.0,
) -> np.ndarray:
    r"""A random camera-shake (motion) blur kernel from a simulated 2-D trajectory.

    The trajectory follows Boracchi & Foi's model ("Modeling the performance of image
    restoration from motion blur", IEEE TIP 2012), the one behind the motion kernels of
    common deblurring training sets (e.g. DeblurGAN's): a point moves at constant speed
    for ``steps`` steps (2000 by default, as in the authors' reference code);
    at each step its velocity receives a Gaussian perturbation, a pull back toward the
    origin (centripetal term) and, rarely, an abrupt near-reversal (a shake), each with a
    randomly drawn strength. The path length is ``uniform(*length_range) · (size - 2)``
    pixels; a path whose extent exceeds the support (``length_range`` above 1) is scaled
    down to fit it. The path is shifted so its centroid is the
    kernel centre (as far as the support allows), rasterised with bilinear weights and
    normalised. Compared with USRNet's generator (a 3-D random walk binned into a
    histogram and smoothed), this produces thin, connected paths at sub-pixel precision
    and works for small supports such as the paper's 7×7 kernels.

    ``centre="support"`` centres the path's extent instead of its centroid: the
    convention of the paper's 7×7 kernels, whose support is centred in the box while
    their centroid is up to 1.2 px off it. ``supersample=n`` draws the path on an
    ``n·size`` grid and sums n×n blocks: thick, smooth kernels like the paper's, whose
    path may fill the box. ``uneven_exposure=b`` lets the camera dwell unevenly along the
    path: point :math:`t \in [0, 1]` of it weighs :math:`e^{\beta t}` with
    :math:`\beta` uniform in :math:`[-b, b]`, so one end is heavier (up to :math:`e^b`
    times), as in the paper's kernels 4 and 5, and their centroid moves further off.
    ``thickness=w`` blurs the path with a Gaussian of standard deviation uniform in
    :math:`[0, w]` pixels (of the output), for bands as broad as the paper's kernel 2.

    Shape:
        - Output: :math:`(size, size)`, float64, non-negative, sums to 1.
    """
    size = check_int("size", size, minimum=3)
    check_choice("centre", centre, ("centroid", "support"))
    supersample = check_int("supersample", supersample, minimum=1)
    uneven_exposure = check_real("uneven_exposure", uneven_exposure, minimum=0.0)
    thickness = check_real("thickness", thickness, minimum=0.0)
    if supersample > 1:
        fine = random_motion_kernel(
            size * supersample,
            rng,
            length_range=length_range,
            steps=steps,
            centre=centre,
            uneven_exposure=uneven_exposure,
            thickness=thickness * supersample,
        )
        return fine.reshape(size, supersample, size, supersample).sum(axis=(1, 3))
    rng = _as_generator(rng)
    low, high = (float(v) for v in length_range)
    if not 0 <= low <= high:
        raise ValueError(f"length_range must satisfy 0 <= low <= high, got {length_range!r}")
    steps = check_int("steps", steps, minimum=2)

    path = _shake_path(rng.uniform(low, high) * (size - 2), steps, rng)
    dwell = np.ones(steps)
    if uneven_exposure > 0:
        dwell = np.exp(rng.uniform(-uneven_exposure, uneven_exposure) * np.linspace(0, 1, steps))
    extent = max(np.ptp(path.real), np.ptp(path.imag))
    if extent > size - 1:  # a long path is scaled down to fit the box
        path = path * ((size - 1) / extent)
    kernel = _rasterise(path, dwell, size, centre)
    if thickness > 0:
        kernel = ndimage.gaussian_filter(kernel, rng.uniform(0.0, thickness), mode="constant")
    return kernel / kernel.sum()


# ---------------------------------------------------------------------------------------
# the Degradation family (training)
# ---------------------------------------------------------------------------------------
class Degradation:
    """Base class: turns a clean HR patch into a training pair.

    Call with the patch and a numpy ``Generator`` (or an int seed); returns float32
    tensors ``(lq, hq)`` or ``(lq, hq, kernel)``. The patch may be a float tensor
    :math:`(C, H, W)` in ``[0, 1]`` or a numpy image :math:`(H, W[, C])` (uint8, or float
    in ``[0, 1]``). Meant for the data-loader side (CPU); one call degrades one patch.
    """

    def __call__(self, hq, rng: SeedLike = None) -> tuple[Tensor, ...]:
        return self.apply(_to_chw(hq), _as_generator(rng))

    def apply(self, hq: Tensor, rng: np.random.Generator) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


def _gaussian_noise(shape, low: float, high: float, rng: np.random.Generator) -> Tensor:
    level = rng.uniform(low, high) if high > low else low
    noise = rng.standard_normal(shape) * (level / 255.0)
    return torch.from_numpy(noise)


class DenoiseDegradation(Degradation):
    """``lq = hq + N(0, σ/255)`` with σ fixed or drawn uniformly from a range (no clipping).

    Args:
        sigma: noise level on the 0-255 scale, or ``(low, high)`` (one level per call).

    Shape:
        - hq: :math:`(C, H, W)`; returns ``(lq, hq)``, both :math:`(C, H, W)` float32.
    """

    def __init__(self, sigma: float | tuple[float, float] = 25.0) -> None:
        self.sigma = _check_sigma(sigma)

    def apply(self, hq: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        noise = _gaussian_noise(tuple(hq.shape), *self.sigma, rng).to(hq.device)
        lq = (hq.to(torch.float64) + noise).to(torch.float32)
        return lq, hq

    def extra_repr(self) -> str:
        return f"sigma={_format_level(self.sigma)}"


class SRDegradation(Degradation):
    """``lq`` = MATLAB bicubic (antialiased) downscaling of ``hq`` by ``1/scale``.

    The patch is first mod-cropped to a multiple of ``scale``; the low-resolution image
    is kept in float (not rounded), as in the paper's test protocol.

    Shape:
        - hq: :math:`(C, H, W)`; returns ``lq`` :math:`(C, H/s, W/s)` and the cropped
          ``hq`` :math:`(C, s\\lfloor H/s\\rfloor, s\\lfloor W/s\\rfloor)`.
    """

    def __init__(self, scale: int = 4) -> None:
        self.scale = check_int("scale", scale, minimum=1)

    def apply(self, hq: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        hq = modcrop(hq, self.scale)
        lq = imresize(hq.to(torch.float64), 1.0 / self.scale).to(torch.float32)
        return lq, hq.contiguous()

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class DeblurDegradation(Degradation):
    """Blur with a random kernel, optionally decimate, then add Gaussian noise.

    Mirrors the deblurring protocol: with ``quantize=True`` (default) the HR patch is put
    on the 8-bit grid and blurred by :func:`blur` (uint8 in, truncated uint8 out,
    circular boundary), exactly as the test images are made; with ``quantize=False``
    the blur is computed in float64. Then ``lq = blurred[::scale, ::scale] / 255 +
    N(0, σ/255)``.

    Args:
        kernel_sources: kernels to draw from, one uniformly per call; each entry is a
            fixed 2-D kernel array or a callable ``rng -> kernel``. Default: 7×7 random
            anisotropic Gaussian and 7×7 random motion kernels with equal probability
            (the size of the paper's deblurring kernels).
        noise: noise level (0-255 scale) or ``(low, high)`` range. Default ``(0, 2.55)``.
        nonblind: also return the kernel (for models that take it as input).
        scale: decimation factor after blurring (1 = deblurring only).
        quantize: blur the 8-bit image as the reference code does (see above).
        grain: level (0-255 scale) or ``(low, high)`` range of Gaussian grain added to the
            clean patch first (clipped to [0, 1]), as the sensor grain of real photos. It
            stays in the target: fine detail the blur and noise erase, which the model
            must not amplify. Default 0 (none).

    Shape:
        - hq: :math:`(C, H, W)`; returns ``lq`` :math:`(C, H/s, W/s)`, ``hq``
          :math:`(C, H, W)` and, when ``nonblind``, ``kernel`` :math:`(1, k, k)`; all float32.
    """

    def __init__(
        self,
        kernel_sources: Sequence[KernelSource] | None = None,
        noise: float | tuple[float, float] = (0.0, 2.55),
        nonblind: bool = False,
        scale: int = 1,
        quantize: bool = True,
        grain: float | tuple[float, float] = 0.0,
    ) -> None:
        if kernel_sources is None:
            kernel_sources = (
                functools.partial(random_anisotropic_gaussian_kernel, 7),
                functools.partial(random_motion_kernel, 7),
            )
        sources = list(kernel_sources)
        if not sources:
            raise ValueError("kernel_sources must not be empty")
        for i, source in enumerate(sources):
            if isinstance(source, np.ndarray):
                check_kernel(source, f"kernel_sources[{i}]")
            elif not callable(source):
                raise TypeError(
                    f"kernel_sources[{i}] must be an array or a callable rng -> kernel, "
                    f"got {type(source).__name__}"
                )
        self.kernel_sources = sources
        self.noise = _check_sigma(noise, "noise")
        self.nonblind = bool(nonblind)
        self.scale = check_int("scale", scale, minimum=1)
        self.quantize = bool(quantize)
        self.grain = _check_sigma(grain, "grain")

    def sample_kernel(self, rng: np.random.Generator) -> np.ndarray:
        """Draw one kernel (float64, 2-D, sum 1)."""
        source = self.kernel_sources[int(rng.integers(len(self.kernel_sources)))]
        kernel = source if isinstance(source, np.ndarray) else source(rng)
        kernel = check_kernel(kernel).astype(np.float64)
        total = kernel.sum()
        if not total > 0:
            raise ValueError(f"a kernel source returned a kernel summing to {total}")
        return kernel / total

    def apply(self, hq: Tensor, rng: np.random.Generator) -> tuple[Tensor, ...]:
        kernel = self.sample_kernel(rng)
        if self.grain[1] > 0:
            grain = _gaussian_noise(tuple(hq.shape), *self.grain, rng)
            hq = (hq.to(torch.float64) + grain).clamp(0, 1).to(hq.dtype)
        if self.quantize:
            image_u8 = tensor_to_image(hq, np.uint8)
            hq = image_to_tensor(image_u8)[0]
            blurred = blur(image_u8, kernel).astype(np.float64) / 255.0
        else:
            blurred = blur(chw_to_hwc(hq).astype(np.float64), kernel)
        blurred = blurred[:: self.scale, :: self.scale]
        noise = _gaussian_noise(blurred.shape, *self.noise, rng).numpy()
        out = (image_to_tensor(blurred + noise)[0], hq.contiguous())
        if self.nonblind:
            out = (*out, torch.from_numpy(kernel.astype(np.float32))[None])
        return out

    def extra_repr(self) -> str:
        return (
            f"kernel_sources={len(self.kernel_sources)}, noise={_format_level(self.noise)}, "
            f"nonblind={self.nonblind}, scale={self.scale}, quantize={self.quantize}, "
            f"grain={_format_level(self.grain)}"
        )
