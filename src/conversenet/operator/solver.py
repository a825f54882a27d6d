r"""The reverse-convolution operator parameterised by λ, with an explicit :math:`X_0`, in
1, 2 and 3 dimensions: :func:`reverse_conv`, its shared body :func:`solve`, and λ from a
noise level (:func:`discrepancy_lambda`).

For every channel with kernel :math:`K` (:math:`k_1\times\dots\times k_d`), integer scale
:math:`s` and regularisation weight :math:`\lambda > 0`, :func:`reverse_conv` returns

.. math::

    X^\star = \arg\min_X \|y - A X\|^2 + \lambda\|X - X_0\|^2,\qquad
    A X = (X \otimes K)\!\downarrow_s,

on the input padded by ``padding`` (``padding_mode``), under circular boundary conditions
on the padded grid, then crops ``padding * s`` from every side (:math:`A`:
:mod:`~conversenet.operator.forward_model`). The normal equations give

.. math::

    X^\star = X_0 + A^\top (A A^\top + \lambda I)^{-1} (y - A X_0),

and :math:`A A^\top` is diagonal in Fourier at the input resolution, with eigenvalues
:math:`\overline{|\hat K|^2}` (the mean over the :math:`s^d` aliased copies of the
spectrum, :math:`\hat K` the kernel's OTF at the output size):

.. math::

    \hat X^\star = \hat X_0 + \operatorname{conj}(\hat K)\,\operatorname{tile}_s\!\left[
        \frac{\hat y - \overline{\hat K \hat X_0}}{\overline{|\hat K|^2} + \lambda}\right].

**The three kinds of** :math:`X_0`:

- ``x0=None`` (the paper's): the nearest upsampling of the padded input,
  :math:`\hat X_0 = \hat B\,\operatorname{tile}_s(\hat y)` with :math:`\hat B` the spectrum
  of the :math:`s^d` box, so :math:`\overline{\hat K\hat X_0} = \overline{\hat K\hat B}\,
  \hat y` and the whole solution is one filter of the input spectrum,
  :math:`\hat X = \operatorname{tile}_s(\hat y)\,G`
  (:func:`~conversenet.operator.spectral.spectral_filter`), the filter of Converse2D.
- ``x0="zero"``: the Tikhonov/Wiener solution with a white prior, the filter :math:`G_0`,
  i.e. :math:`X^\star = A^\top(AA^\top + \lambda)^{-1} y`.
- a tensor: :math:`X^\star = X_0 + G_0 * (y - A X_0)`; the residual is computed in the
  pixel domain (a strided depthwise convolution, :math:`O(k^d)` per input pixel).

:func:`reverse_conv` takes the exact spatial path (:mod:`~conversenet.operator.spatial`)
wherever it applies (``method="auto"``, every kernel side at most the scale); ``method=
"fft"`` or ``"spatial"`` force one. Outside autograd a large input is solved a few
channels at a time (:data:`CHUNK_BYTES`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_choice, check_real
from .checks import (
    METHODS,
    X0_KINDS,
    channels_innermost,
    check_fits,
    check_input,
    check_kernel,
    check_lambda,
    check_options,
    check_reflect,
    check_scale,
    check_x0,
    compute_dtype,
    pad,
    tracks_grad,
)
from .fft import TORCH, autocast_off, is_export_friendly
from .forward_model import convolve_downsample, nearest_upsample
from .spatial import cells_align, solve_blocks, solve_cells, spatial_path_applies
from .spectral import apply_spectral_filter, block_mean, padded_otf, spectral_filter

__all__ = ["CHUNK_BYTES", "discrepancy_lambda", "reverse_conv"]

#: (kernel, *padded input size) -> the filter G of the paper's X0 (a layer's cache)
FilterMaker = Callable[..., Tensor]
X0 = Tensor | str | None
LambdaArg = Tensor | float | Callable[[torch.dtype], Tensor]

#: Outside autograd, an input whose spectrum would exceed this many bytes is solved a few
#: channels at a time (the channels are independent): an untiled 1024² Converse-DnCNN pass
#: then holds one chunk's padded input, spectrum and filter instead of all 128 channels'.
CHUNK_BYTES = 64 * 2**20


def reverse_conv(
    y: Tensor,
    kernel: Tensor,
    lam: Tensor | float,
    scale: int = 1,
    padding: int = 0,
    padding_mode: str = "circular",
    x0: Tensor | str | None = None,
    *,
    method: str = "auto",
) -> Tensor:
    r"""Reverse convolution with an explicit regularisation weight and initial estimate.

    Solves, per sample and channel, :math:`\min_X \|y_p - (X\otimes K)\downarrow_s\|^2 +
    \lambda\|X - X_0\|^2` on the input padded by ``padding`` (``y_p``) under circular
    boundary conditions, and crops ``padding * scale`` from every side; see the module
    docstring for the closed forms. 1-D, 2-D and 3-D signals: the number of spatial
    dimensions is that of ``y``.

    Args:
        y: input :math:`(N, C, L)`, :math:`(N, C, H, W)` or :math:`(N, C, D, H, W)`,
            floating point (float16/bfloat16 are computed in float32 and returned in
            their dtype).
        kernel: :math:`(1, C, *k)` shared by the batch, or :math:`(N, C, *k)` one set per
            sample (the data step of non-blind deblurring).
        lam: λ > 0: a number, or a tensor :math:`(1, C, 1, ...)` (per channel) or
            :math:`(N, C, 1, ...)` (per sample and channel).
        scale: integer upsampling factor :math:`s \ge 1`.
        padding: padding on every side before solving.
        padding_mode: ``circular``, ``replicate``, ``reflect`` or ``constant`` (zeros).
        x0: ``None``, the paper's nearest upsampling of the padded input; ``"zero"``, the
            Tikhonov/Wiener solution; or a tensor used as given, at the output resolution
            of the padded input, :math:`(N, C, s(H + 2p), s(W + 2p))`.
        method: ``auto`` (the exact spatial path when every kernel side is at most
            ``scale``, otherwise the FFT), ``fft`` or ``spatial``.

    Shape:
        - y: :math:`(N, C, n_1, ..., n_d)`; output: :math:`(N, C, s n_1, ..., s n_d)`.

    Example:
        >>> y = torch.rand(2, 3, 16, 16)
        >>> k = torch.softmax(torch.randn(1, 3, 9), -1).view(1, 3, 3, 3)
        >>> reverse_conv(y, k, 1e-2, scale=2).shape
        torch.Size([2, 3, 32, 32])
        >>> x = reverse_conv(y, k, 1e-2, x0="zero")  # Tikhonov / Wiener deconvolution
    """
    lam = check_problem(y, kernel, lam, scale, padding, padding_mode, x0)
    check_choice("method", method, METHODS)
    return solve(y, kernel, lam, scale, padding, padding_mode, x0, method)


def check_problem(
    y: Tensor, kernel: Tensor, lam: object, scale: int, padding: int, padding_mode: str, x0
) -> Tensor | float:
    """The checks of :func:`reverse_conv`'s arguments (also those of the literal formula);
    returns λ as a float or a tensor."""
    ndim = check_input("y", y)
    check_options(scale, padding, padding_mode)
    check_kernel(kernel, y, ndim)
    lam = check_lambda(lam, y, ndim)
    check_x0(x0, y, scale, padding)
    return lam


# ---------------------------------------------------------------------------------------
# the shared body
# ---------------------------------------------------------------------------------------
def solve(
    x: Tensor,
    kernel: Tensor,
    lam: LambdaArg,
    scale: int,
    padding: int,
    padding_mode: str,
    x0: X0 = None,
    method: str = "auto",
    make_filter: FilterMaker | None = None,
) -> Tensor:
    """Shared body of every form of the operator, on checked arguments: empty inputs,
    compute dtype (float16/bfloat16 in float32), padding, the path, channel chunks,
    cropping.

    ``lam`` may be a function of the compute dtype, evaluated only where λ is needed.
    ``make_filter(kernel, *padded_sizes)``, when given, supplies the filter of the paper's
    :math:`X_0` on the spectral path (a layer's cache).
    """
    n, c, *sizes = x.shape
    if any(size == 0 for size in sizes):
        raise ValueError(
            f"input must have a non-empty spatial size, got {'x'.join(map(str, sizes))}"
        )
    kernel_sizes = kernel.shape[2:]
    check_fits(kernel_sizes, [scale * (size + 2 * padding) for size in sizes], "padded output")
    exact = spatial_path_applies(kernel_sizes, scale)
    if method == "spatial" and not exact:
        raise ValueError(
            "method='spatial' needs every kernel side <= scale (then the blocks of the "
            f"least-squares problem decouple), got kernel "
            f"{'x'.join(map(str, kernel_sizes))} and scale {scale}"
        )
    spatial = method == "spatial" or (method == "auto" and exact)
    dtype = compute_dtype(x.dtype)
    if n == 0:  # an empty batch (FFT backends reject it); keep the autograd connection
        links = x.sum() + kernel.sum() + as_lambda(lam, dtype, x).sum()
        if isinstance(x0, Tensor):
            links = links + x0.sum()
        return x.new_zeros(0, c, *(scale * size for size in sizes)) + 0 * links.to(x.dtype)

    kernel = kernel.to(dtype)
    if isinstance(x0, Tensor):
        x0 = x0.to(dtype)
    if spatial or x0 is not None or make_filter is None:
        lam = as_lambda(lam, dtype, x)
    if spatial and not isinstance(x0, Tensor) and cells_align(kernel_sizes):
        check_reflect(sizes, padding, padding_mode)  # padding is not needed, but checked
        with autocast_off(x.device.type):
            out = solve_cells(x.to(dtype), kernel, lam, scale, x0 is None)
        return out.to(x.dtype)
    chunk = c if spatial or isinstance(x0, Tensor) else channel_chunk(x, kernel, scale, padding)
    if chunk < c:  # a large input outside autograd: a few channels at a time (less memory)
        layout = torch.channels_last if channels_innermost(x) else torch.contiguous_format
        out_sizes = (n, c, *(scale * size for size in sizes))
        out = torch.empty(out_sizes, dtype=dtype, device=x.device, memory_format=layout)
        for start in range(0, c, chunk):
            part = slice(start, start + chunk)
            # (a chunk's filter is built from its λ; a layer caches whole filters only)
            args = (_channels(kernel, part, c), _channels(lam, part, c), scale, padding)
            out[:, part] = solve(x[:, part], *args, padding_mode, x0, method, None)
        return out.to(x.dtype)
    y = pad(x.to(dtype), padding, padding_mode)
    if spatial:
        with autocast_off(x.device.type):
            out = solve_blocks(y, kernel, lam, scale, x0)
    else:
        out = _solve_fft(y, kernel, lam, scale, x0, make_filter)
    del y
    return crop(out, padding * scale).to(x.dtype)


def _solve_fft(
    y: Tensor, kernel: Tensor, lam: Tensor, scale: int, x0: X0, make_filter: FilterMaker | None
) -> Tensor:
    """The spectral path on the padded grid."""
    sizes = tuple(y.shape[2:])
    if x0 is None and make_filter is not None:
        filt = make_filter(kernel, *sizes)
    else:
        filt = spectral_filter(kernel, lam, scale, sizes, nearest_x0=x0 is None)
    if not isinstance(x0, Tensor):
        return apply_spectral_filter(y, filt, scale)
    with autocast_off(y.device.type):
        residual = y - convolve_downsample(x0, kernel, scale)
    return x0 + apply_spectral_filter(residual, filt, scale)


def channel_chunk(x: Tensor, kernel: Tensor, scale: int, padding: int) -> int:
    """How many channels to solve at once (all of them when no chunking is needed)."""
    n, c, *sizes = x.shape
    if tracks_grad(x, kernel) or is_export_friendly():  # (a graph takes whole tensors)
        return c
    padded = [scale * (size + 2 * padding) for size in sizes]
    values = n * math.prod(padded[:-1]) * (padded[-1] // 2 + 1)  # of the half spectrum
    per_channel = values * 2 * torch.finfo(compute_dtype(x.dtype)).bits // 8
    return max(1, min(c, CHUNK_BYTES // max(per_channel, 1)))


def _channels(value, part: slice, count: int):
    """The channels ``part`` of a per-channel argument (a kernel, λ or a λ of the dtype)."""
    if callable(value):
        return lambda dtype: _channels(value(dtype), part, count)
    if isinstance(value, Tensor) and value.dim() > 1 and value.shape[1] == count:
        return value[:, part]
    return value


def as_lambda(lam: LambdaArg, dtype: torch.dtype, x: Tensor) -> Tensor:
    """λ as a tensor of ``dtype`` (a number as a (1, 1, ...) tensor)."""
    if callable(lam):
        lam = lam(dtype)
    if isinstance(lam, Tensor):
        return lam.to(dtype)
    return torch.full((1,) * x.dim(), lam, dtype=dtype, device=x.device)


class _Crop(torch.autograd.Function):
    """``crop`` samples off both ends of every spatial axis (a view). Its backward is one
    zero-padding of the gradient, where a chain of slices would fill and copy a full-size
    buffer per axis."""

    @staticmethod
    def forward(out: Tensor, crop: int) -> Tensor:
        return out[(..., *(slice(crop, size - crop) for size in out.shape[2:]))]

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.crop = inputs[1]
        ctx.ndim = inputs[0].dim() - 2

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return F.pad(grad, (ctx.crop,) * (2 * ctx.ndim)), None


def crop(out: Tensor, size: int) -> Tensor:
    """``size`` samples off both ends of every spatial axis."""
    if size == 0:
        return out
    if tracks_grad(out):
        return _Crop.apply(out, size)
    return out[(..., *(slice(size, n - size) for n in out.shape[2:]))]


# ---------------------------------------------------------------------------------------
# choosing λ from the noise level
# ---------------------------------------------------------------------------------------
def discrepancy_lambda(
    y: Tensor,
    kernel: Tensor,
    noise_std: float,
    scale: int = 1,
    x0: str | None = None,
    bounds: tuple[float, float] = (1e-10, 1e6),
    iterations: int = 60,
) -> Tensor:
    r"""λ by Morozov's discrepancy principle: the solution explains the data to the noise
    level, :math:`\frac1n\|y - A X^\star_\lambda\|^2 = \sigma^2`.

    Without padding (circular boundaries) the residual is a spectral filter of
    :math:`d = y - A X_0`: :math:`A X^\star - y = -\lambda (AA^\top + \lambda)^{-1} d`,
    so its mean square, :math:`\frac{1}{n^2}\sum_\omega |\hat d|^2 \lambda^2 /
    (\overline{|\hat K|^2} + \lambda)^2`, grows with λ and the equation is solved by
    bisection on :math:`\log\lambda`, for every sample and channel at once. Where even
    the largest λ of ``bounds`` leaves a residual below the noise (:math:`X_0` already
    explains the data), the upper bound is returned; where the smallest does not reach
    it, the lower bound.

    Args:
        y: observation :math:`(N, C, *n)`, floating point.
        kernel: :math:`(1 \text{ or } N, C, *k)`.
        noise_std: :math:`\sigma`, the standard deviation of the noise in the units of
            ``y`` (e.g. 2.55/255 for images in [0, 1]).
        scale: the factor :math:`s` of :math:`A`.
        x0: ``None`` (the nearest upsampling of ``y``) or ``"zero"``.
        bounds, iterations: the search interval of λ and the bisection steps.

    Returns:
        λ of shape :math:`(N, C, 1, ...)`, in the dtype of ``y`` (float32 for half inputs),
        for :func:`reverse_conv` with the same ``kernel``, ``scale`` and ``x0`` and no
        padding.

    Example:
        >>> y, k = torch.rand(1, 3, 32, 32), torch.full((1, 3, 5, 5), 1 / 25)
        >>> lam = discrepancy_lambda(y, k, 0.01)
        >>> x = reverse_conv(y, k, lam)
        >>> from conversenet.operator import conv_downsample
        >>> round(float((conv_downsample(x, k) - y).square().mean().sqrt()), 4)
        0.01
    """
    ndim = check_input("y", y)
    check_scale(scale)
    check_kernel(kernel, y, ndim)
    sigma = check_real("noise_std", noise_std, minimum=0)
    low, high = (check_real("bounds", b) for b in bounds)
    if not 0 < low < high:
        raise ValueError(f"bounds must be 0 < low < high, got {tuple(bounds)}")
    if x0 is not None and x0 not in X0_KINDS:
        raise ValueError(f"x0 must be None or 'zero', got {x0!r}")
    sizes = y.shape[2:]
    check_fits(kernel.shape[2:], [scale * n for n in sizes], "output")
    dtype = compute_dtype(y.dtype)
    with torch.no_grad(), autocast_off(y.device.type):
        y, kernel = y.detach().to(dtype), kernel.detach().to(dtype)
        dims = tuple(range(2, y.dim()))
        data = y
        if x0 is None:
            data = y - convolve_downsample(nearest_upsample(y, scale), kernel, scale)
        # torch's transforms, as the figures always were: λ is a statistic of the data
        energy = TORCH.fftn(data, ndim).abs().square()
        k_hat = TORCH.fftn(padded_otf(kernel, [scale * n for n in sizes]), ndim)
        power = block_mean(k_hat.abs().square(), scale)
        count = math.prod(sizes)
        target = sigma**2 * count**2  # Parseval: Σ|d̂|² = n Σ d², and a mean over n pixels
        lo = torch.full((*y.shape[:2], *(1,) * ndim), math.log(low), dtype=dtype, device=y.device)
        hi = torch.full_like(lo, math.log(high))
        for _ in range(iterations):
            mid = (lo + hi) / 2
            lam = mid.exp()
            residual = (energy * (lam / (power + lam)).square()).sum(dim=dims, keepdim=True)
            above = residual > target
            hi, lo = torch.where(above, mid, hi), torch.where(above, lo, mid)
        return ((lo + hi) / 2).exp()
