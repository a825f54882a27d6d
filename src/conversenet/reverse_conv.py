r"""The reverse-convolution operator parameterised by λ, with an explicit :math:`X_0`, in
1, 2 and 3 dimensions; its forward model and the forward model's adjoint.

For every channel with kernel :math:`K` (:math:`k_1\times\dots\times k_d`), integer scale
:math:`s` and regularisation weight :math:`\lambda > 0`, :func:`reverse_conv` returns

.. math::

    X^\star = \arg\min_X \|y - A X\|^2 + \lambda\|X - X_0\|^2,\qquad
    A X = (X \otimes K)\!\downarrow_s,

on the input padded by ``padding`` (``padding_mode``), under circular boundary conditions
on the padded grid, then crops ``padding * s`` from every side. :math:`A`
(:func:`conv_downsample`) is the circular convolution with the kernel centred on its tap
:math:`c = \lfloor k/2 \rfloor` on every axis, :math:`(X \otimes K)(p) = \sum_r K[r]\,
X(p - r + c)`, followed by keeping every :math:`s`-th sample; :math:`A^\top` is
:func:`conv_downsample_adjoint`. The normal equations give

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
  :math:`\hat X = \operatorname{tile}_s(\hat y)\,G` with
  :math:`G = \operatorname{conj}(\hat K)\operatorname{tile}_s[(1 - \overline{\hat K\hat B})
  / (\overline{|\hat K|^2} + \lambda)] + \hat B`, the filter of Converse2D.
- ``x0="zero"``: the Tikhonov/Wiener solution with a white prior,
  :math:`G_0 = \operatorname{conj}(\hat K)\operatorname{tile}_s[1 / (\overline{|\hat K|^2}
  + \lambda)]`, i.e. :math:`X^\star = A^\top(AA^\top + \lambda)^{-1} y`.
- a tensor: :math:`X^\star = X_0 + G_0 * (y - A X_0)`; the residual is computed in the
  pixel domain (a strided depthwise convolution, :math:`O(k^d)` per input pixel).

**The spatial path.** Row :math:`i` of :math:`A` reads :math:`X` on the block
:math:`s\,i + D`, :math:`D = \prod_j [c_j - k_j + 1,\ c_j]`, with the weights
:math:`K[c - d]`. When every :math:`k_j \le s` the blocks of different rows are disjoint
(also across the circular wrap of the padded grid: two positions of different blocks
differ by :math:`s(i - i') + (d - d')` with :math:`|d_j - d'_j| < s`), so
:math:`AA^\top = \|K\|^2 I` and

.. math::

    X^\star = X_0 + A^\top\,\frac{y - A X_0}{\|K\|^2 + \lambda},

exact and without any FFT: an independent rank-one problem per block. The blocks need
not line up with the :math:`s^d` cells of the nearest upsampling (``k = 3, s = 3``:
:math:`D = \{-1, 0, 1\}` straddles two cells) and they wrap around the padded grid; the
general spatial path follows them. They do line up when every :math:`k_j \le 2`
(:math:`D \subseteq [0, k_j - 1]`); with the paper's :math:`X_0` (or zero) each output
cell then depends on its own input pixel only, :math:`X^\star = \operatorname{nearest}_s(y)
\cdot M` for the :math:`s^d` pattern
:math:`M = 1 + \check K\,(1 - \sum K)/(\|K\|^2 + \lambda)` (:math:`\check K` the flipped
kernel in the corner of the cell; :math:`M = \check K/(\|K\|^2+\lambda)` for
``x0="zero"``), and padding does not change the cropped result, so none is done. The
×2 upsamplers of Converse-SRResNet (``k = 2, s = 2``) take that path.

:func:`reverse_conv` picks the spatial path wherever it is exact (``method="auto"``);
``method="fft"`` or ``"spatial"`` force one. :func:`reverse_conv_literal` is the paper's
step-by-step formula in any dimension, the reference of the tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import check_choice, check_int, check_real
from .spectral import (
    _compute_dtype,
    _tracks_grad,
    apply_converse2d_filter,
    is_export_friendly,
    pad_input,
    reverse_conv_filter,
)

__all__ = [
    "BIAS_SHIFT",
    "METHODS",
    "PADDING_MODES",
    "X0_KINDS",
    "apply_spectral_filter_nd",
    "conv_downsample",
    "conv_downsample_adjoint",
    "converse1d",
    "converse3d",
    "discrepancy_lambda",
    "regularizer",
    "reverse_conv",
    "reverse_conv_literal",
    "spatial_path_applies",
    "spectral_filter_nd",
]

PADDING_MODES = ("circular", "replicate", "reflect", "constant")
BIAS_SHIFT = 9.0  # λ = sigmoid(bias - 9) + eps: a zero bias gives λ ≈ 1.2e-4
#: The string values of ``x0`` (``None`` is the paper's nearest upsampling).
X0_KINDS = ("zero",)
#: How :func:`reverse_conv` solves: ``auto`` (the spatial path wherever it is exact),
#: ``fft`` or ``spatial``.
METHODS = ("auto", "fft", "spatial")

_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
_CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSES = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}

# (kernel, *padded input size) -> the filter G of the paper's X0 (a layer's cache)
FilterMaker = Callable[..., Tensor]
X0 = Tensor | str | None
LambdaArg = Tensor | float | Callable[[torch.dtype], Tensor]


def regularizer(bias: Tensor, eps: float) -> Tensor:
    """The per-channel regularisation weight λ = sigmoid(bias − 9) + eps (same shape as bias)."""
    return torch.sigmoid(bias - BIAS_SHIFT) + eps


# ---------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------
def check_hyperparameters(
    kernel_size: int, scale: int, padding: int, padding_mode: str, eps: float
) -> None:
    """Validate the constructor arguments of a Converse layer; raise TypeError/ValueError."""
    check_int("kernel_size", kernel_size, minimum=1)
    check_options(scale, padding, padding_mode, eps)


def check_options(scale: int, padding: int, padding_mode: str, eps: float | None = None) -> None:
    """Validate the non-tensor arguments of the operator; raise TypeError/ValueError."""
    _check_scale(scale)
    check_int("padding", padding, minimum=0)
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    if eps is not None:
        check_real("eps", eps, minimum=0)


def _check_scale(scale: int) -> None:
    if check_int("scale", scale) < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")


def _shape_text(ndim: int, prefix: str = "") -> str:
    return ", ".join(prefix + axis for axis in _AXES[ndim])


def _check_tensor(name: str, t: object) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
    return t


def _check_input(name: str, x: object, ndim: int | None = None) -> int:
    """The number of spatial dimensions of a signal (N, C, *spatial), 1 to 3."""
    _check_tensor(name, x)
    dims = (ndim,) if ndim is not None else (1, 2, 3)
    if x.dim() - 2 not in dims:
        expected = " or ".join(f"{d + 2}-D (N, C, {_shape_text(d)})" for d in dims)
        raise ValueError(f"{name} must be {expected}, got shape {tuple(x.shape)}")
    return x.dim() - 2


def check_converse_tensors(x: Tensor, weight: Tensor, bias: Tensor, ndim: int) -> None:
    """The tensors of the paper's parameterisation: input (N, C, *spatial), weight
    (1, C, *k), bias (1, C, 1, ...)."""
    for name, t in (("input", x), ("weight", weight), ("bias", bias)):
        _check_tensor(name, t)
    _check_input("input", x, ndim)
    c = x.shape[1]
    if weight.dim() != ndim + 2 or weight.shape[:2] != (1, c):
        raise ValueError(
            f"weight must have shape (1, {c}, {_shape_text(ndim, 'k')}) for an input with "
            f"{c} channels, got {tuple(weight.shape)}"
        )
    expected = (1, c) + (1,) * ndim
    if tuple(bias.shape) != expected:
        raise ValueError(f"bias must have shape {expected}, got {tuple(bias.shape)}")


def _check_kernel(kernel: object, x: Tensor, ndim: int, name: str = "input") -> None:
    _check_tensor("kernel", kernel)
    n, c = x.shape[:2]
    if kernel.dim() != ndim + 2 or kernel.shape[1] != c:
        raise ValueError(
            f"kernel must have shape (1, {c}, {_shape_text(ndim, 'k')}) or "
            f"(N, {c}, {_shape_text(ndim, 'k')}) for a {ndim}-D {name} with {c} channels, "
            f"got {tuple(kernel.shape)}"
        )
    if kernel.shape[0] not in (1, n):
        raise ValueError(
            f"kernel batch size must be 1 (one kernel for every sample) or the {name} batch "
            f"size {n}, got {kernel.shape[0]}"
        )
    if any(k == 0 for k in kernel.shape[2:]):
        raise ValueError(f"kernel must not be empty, got shape {tuple(kernel.shape)}")


def _check_lambda(lam: object, x: Tensor, ndim: int) -> Tensor | float:
    if not isinstance(lam, Tensor):
        value = check_real("lam", lam)
        if value <= 0:
            raise ValueError(f"lam must be > 0, got {value:g}")
        return value
    _check_tensor("lam", lam)
    n, c = x.shape[:2]
    tail = (1,) * ndim
    if lam.dim() != ndim + 2 or lam.shape[1] != c or lam.shape[0] not in (1, n):
        raise ValueError(
            f"lam must be a positive number or a tensor of shape {(1, c, *tail)} or "
            f"{(n, c, *tail)}, got shape {tuple(lam.shape)}"
        )
    if tuple(lam.shape[2:]) != tail:
        raise ValueError(
            f"lam must be constant over space, shape {(lam.shape[0], c, *tail)}, "
            f"got {tuple(lam.shape)}"
        )
    if not torch.compiler.is_compiling() and lam.numel() > 0:
        smallest = lam.detach().min()
        if not bool(smallest > 0) or not bool(torch.isfinite(lam.detach()).all()):
            raise ValueError(
                f"lam must be positive and finite everywhere, got a minimum of {smallest.item():g}"
            )
    return lam


def _check_x0(x0: object, x: Tensor, scale: int, padding: int) -> None:
    if x0 is None:
        return
    if isinstance(x0, str):
        if x0 not in X0_KINDS:
            raise ValueError(f"x0 must be None, 'zero' or a tensor, got {x0!r}")
        return
    if not isinstance(x0, Tensor):
        raise TypeError(f"x0 must be None, 'zero' or a tensor, got {type(x0).__name__}")
    _check_tensor("x0", x0)
    n, c, *sizes = x.shape
    expected = (n, c, *(scale * (size + 2 * padding) for size in sizes))
    if tuple(x0.shape) != expected:
        where = f" (the output size of the input padded by {padding})" if padding else ""
        raise ValueError(
            f"x0 must have shape {expected}{where}, scale {scale} times the "
            f"{'padded ' if padding else ''}input, got {tuple(x0.shape)}"
        )


def _check_fits(kernel_sizes: Sequence[int], grid: Sequence[int], what: str) -> None:
    if any(k > n for k, n in zip(kernel_sizes, grid, strict=True)):
        raise ValueError(
            f"kernel {'x'.join(map(str, kernel_sizes))} does not fit the {what} "
            f"{'x'.join(map(str, grid))}; use a larger input or padding"
        )


def _check_reflect(sizes: Sequence[int], padding: int, padding_mode: str) -> None:
    if padding_mode == "reflect" and any(padding >= size for size in sizes):
        axes = "both axes" if len(sizes) == 2 else "every axis"
        raise ValueError(
            f"reflect padding {padding} needs an input larger than the padding on {axes}, "
            f"got {'x'.join(map(str, sizes))}; use a smaller padding or another padding_mode"
        )


def pad_nd(x: Tensor, padding: int, padding_mode: str) -> Tensor:
    """Pad every spatial dimension of (N, C, *spatial) by ``padding`` on each side."""
    if x.dim() == 4:
        return pad_input(x, padding, padding_mode)
    if padding == 0:
        return x
    _check_reflect(x.shape[2:], padding, padding_mode)
    return F.pad(x, (padding,) * (2 * (x.dim() - 2)), mode=padding_mode)


# ---------------------------------------------------------------------------------------
# the forward model A and its adjoint
# ---------------------------------------------------------------------------------------
def _grouped(op, x: Tensor, kernel: Tensor, scale: int) -> Tensor:
    """A depthwise (transposed) convolution with one kernel set, or one per sample."""
    n, c = x.shape[:2]
    ks = kernel.shape[2:]
    weight = kernel.flip(tuple(range(2, kernel.dim())))
    if kernel.shape[0] == 1:
        return op(x, weight.reshape(c, 1, *ks), stride=scale, groups=c)
    out = op(
        x.reshape(1, n * c, *x.shape[2:]), weight.reshape(n * c, 1, *ks), stride=scale, groups=n * c
    )
    return out.view(n, c, *out.shape[2:])


def _conv_downsample(x: Tensor, kernel: Tensor, scale: int) -> Tensor:
    ks = kernel.shape[2:]
    pads: list[int] = []
    for k in reversed(ks):  # X(p - r + c) for taps r: k - 1 - c samples before, c after
        pads += [k - 1 - k // 2, k // 2]
    return _grouped(_CONVS[len(ks)], F.pad(x, pads, mode="circular"), kernel, scale)


def _conv_downsample_adjoint(y: Tensor, kernel: Tensor, scale: int) -> Tensor:
    ks = kernel.shape[2:]
    sizes = [scale * n for n in y.shape[2:]]
    z = _grouped(_CONV_TRANSPOSES[len(ks)], y, kernel, scale)  # (n - 1) s + k per axis
    # the adjoint of the circular padding: fold position t onto t - (k - 1 - c) mod size
    pads: list[int] = []
    for size, length in zip(reversed(sizes), reversed(z.shape[2:]), strict=True):
        pads += [0, 2 * size - length]
    z = F.pad(z, pads)
    folded = z.reshape(*z.shape[:2], *(d for size in sizes for d in (2, size)))
    folded = folded.sum(dim=tuple(2 + 2 * i for i in range(len(sizes))))
    shifts = [-(k - 1 - k // 2) for k in ks]
    return torch.roll(folded, shifts=shifts, dims=tuple(range(2, 2 + len(ks))))


def _check_forward_model_args(x: Tensor, kernel: Tensor, scale: int, name: str) -> int:
    ndim = _check_input(name, x)
    _check_scale(scale)
    _check_kernel(kernel, x, ndim, name)
    return ndim


def conv_downsample(x: Tensor, kernel: Tensor, scale: int = 1) -> Tensor:
    r"""The forward model :math:`A` of the reverse convolution: circular depthwise
    convolution with the kernel centred as the operator centres it, then every
    :math:`s`-th sample.

    .. math::

        (A X)_i = \sum_r K[r]\, X\big((s\,i - r + c) \bmod sN\big),
        \qquad c = \lfloor k/2 \rfloor \text{ per axis.}

    :func:`reverse_conv` with :math:`\lambda \to 0` inverts it (for kernels whose
    transfer function has no zeros).

    Args:
        x: signal :math:`(N, C, sL)`, :math:`(N, C, sH, sW)` or :math:`(N, C, sD, sH, sW)`.
        kernel: :math:`(1, C, *k)` (shared) or :math:`(N, C, *k)` (one per sample), with
            the same number of spatial dimensions as ``x``, each side at most its size.
        scale: integer :math:`s \ge 1`; every spatial size of ``x`` must be a multiple.

    Shape:
        - x: :math:`(N, C, s n_1, ..., s n_d)`; output: :math:`(N, C, n_1, ..., n_d)`.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> conv_downsample(x, torch.full((1, 3, 3, 3), 1 / 9), 2).shape
        torch.Size([2, 3, 8, 8])
    """
    _check_forward_model_args(x, kernel, scale, "x")
    sizes = x.shape[2:]
    if any(size % scale for size in sizes):
        raise ValueError(
            f"x's spatial size {'x'.join(map(str, sizes))} must be a multiple of scale {scale}"
        )
    _check_fits(kernel.shape[2:], sizes, "input")
    if x.shape[0] == 0:
        return x.new_zeros(*x.shape[:2], *(size // scale for size in sizes))
    return _conv_downsample(x, kernel.to(x.dtype), scale)


def conv_downsample_adjoint(y: Tensor, kernel: Tensor, scale: int = 1) -> Tensor:
    r"""The adjoint :math:`A^\top` of :func:`conv_downsample`: zero-upsampling by
    :math:`s`, then circular correlation with the kernel (transposed convolution with the
    overhang folded back circularly), so that
    :math:`\langle A x, y\rangle = \langle x, A^\top y\rangle`.

    Shape:
        - y: :math:`(N, C, n_1, ..., n_d)`; kernel :math:`(1 \text{ or } N, C, *k)`;
          output: :math:`(N, C, s n_1, ..., s n_d)`.

    Example:
        >>> y = torch.rand(2, 3, 8, 8)
        >>> conv_downsample_adjoint(y, torch.full((1, 3, 3, 3), 1 / 9), 2).shape
        torch.Size([2, 3, 16, 16])
    """
    _check_forward_model_args(y, kernel, scale, "y")
    sizes = [scale * n for n in y.shape[2:]]
    _check_fits(kernel.shape[2:], sizes, "output")
    if y.shape[0] == 0 or any(n == 0 for n in sizes):
        return y.new_zeros(*y.shape[:2], *sizes)
    return _conv_downsample_adjoint(y, kernel.to(y.dtype), scale)


# ---------------------------------------------------------------------------------------
# the spatial path (every kernel side <= scale)
# ---------------------------------------------------------------------------------------
def spatial_path_applies(kernel_sizes: Sequence[int], scale: int) -> bool:
    """Whether the blocks of the least-squares problem decouple (every kernel side
    ``<= scale``), so that the spatial path is exact."""
    return all(k <= scale for k in kernel_sizes)


def _cells_align(kernel_sizes: Sequence[int]) -> bool:
    """Whether every block lies inside one s^d cell of the nearest upsampling."""
    return all(k <= 2 for k in kernel_sizes)


def _spatial_sum(t: Tensor) -> Tensor:
    return t.sum(dim=tuple(range(2, t.dim())), keepdim=True)


def _nearest(y: Tensor, scale: int) -> Tensor:
    """Nearest-neighbour upsampling of every spatial axis by ``scale`` (exact copies)."""
    if scale == 1:
        return y
    n, c, *sizes = y.shape
    view = [n, c, *(d for size in sizes for d in (size, 1))]
    expanded = [n, c, *(d for size in sizes for d in (size, scale))]
    return y.reshape(view).expand(expanded).reshape(n, c, *(scale * size for size in sizes))


def _cells(y: Tensor, pattern: Tensor) -> Tensor:
    """Every input pixel times an s^d pattern: (N, C, *n) x (B, C, *[s]*d) -> (N, C, *s·n)."""
    n, c, *sizes = y.shape
    s = pattern.shape[-1]
    y_view = y.reshape(n, c, *(d for size in sizes for d in (size, 1)))
    p_view = pattern.reshape(pattern.shape[0], c, *(d for _ in sizes for d in (1, s)))
    out = y_view * p_view
    return out.reshape(out.shape[0], c, *(s * size for size in sizes))


def _solve_cells(x: Tensor, kernel: Tensor, lam: Tensor, scale: int, nearest_x0: bool) -> Tensor:
    """The aligned spatial path: X* = nearest(x) · M (see the module docstring)."""
    flipped = kernel.flip(tuple(range(2, kernel.dim())))
    pads: list[int] = []
    for k in reversed(kernel.shape[2:]):
        pads += [0, scale - k]
    corner = F.pad(flipped, pads)  # K[c - d] at d = 0 .. k - 1 of every axis
    norm = _spatial_sum(kernel.square()) + lam
    if not nearest_x0:
        return _cells(x, corner / norm)
    return _cells(x, 1 + corner * ((1 - _spatial_sum(kernel)) / norm))


def _solve_blocks(y: Tensor, kernel: Tensor, lam: Tensor, scale: int, x0: X0) -> Tensor:
    """The general spatial path on the padded grid: X0 + Aᵀ (y − A X0) / (‖K‖² + λ)."""
    norm = _spatial_sum(kernel.square()) + lam
    if isinstance(x0, str):  # "zero"
        return _conv_downsample_adjoint(y / norm, kernel, scale)
    if x0 is None:
        x0 = _nearest(y, scale)
    residual = (y - _conv_downsample(x0, kernel, scale)) / norm
    return x0 + _conv_downsample_adjoint(residual, kernel, scale)


# ---------------------------------------------------------------------------------------
# the spectral path in 1-D and 3-D (2-D uses the fast filter of conversenet.spectral)
# ---------------------------------------------------------------------------------------
def _otf_nd(kernel: Tensor, sizes: Sequence[int]) -> Tensor:
    """The kernels zero-padded to ``sizes`` and centred on the origin (circularly)."""
    ks = kernel.shape[2:]
    pads: list[int] = []
    for k, size in zip(reversed(ks), reversed(sizes), strict=True):
        pads += [0, size - k]
    dims = tuple(range(2, kernel.dim()))
    return torch.roll(F.pad(kernel, pads), shifts=[-(k // 2) for k in ks], dims=dims)


def _block_mean_nd(a: Tensor, scale: int) -> Tensor:
    """Mean over the s^d aliased blocks of every spatial axis: (.., s·n, ..) -> (.., n, ..)."""
    sizes = a.shape[2:]
    view = [*a.shape[:2], *(d for size in sizes for d in (scale, size // scale))]
    return a.reshape(view).mean(dim=tuple(2 + 2 * i for i in range(len(sizes))))


def _box_spectrum_nd(scale: int, sizes: Sequence[int], dtype, device) -> Tensor:
    """Full DFT of the s^d box at the origin (the nearest upsampling), on a grid of sizes."""
    spectrum = None
    for axis, size in enumerate(sizes):
        box = torch.zeros(size, dtype=dtype, device=device)
        box[:scale] = 1
        shape = [size if i == axis else 1 for i in range(len(sizes))]
        factor = torch.fft.fft(box).view(shape)
        spectrum = factor if spectrum is None else spectrum * factor
    return spectrum


def spectral_filter_nd(
    kernel: Tensor, lam: Tensor, scale: int, sizes: Sequence[int], nearest_x0: bool = True
) -> Tensor:
    r"""The filter :math:`G` (paper's :math:`X_0`) or :math:`G_0` (:math:`X_0 = 0`) in any
    dimension, built from a full FFT of the padded kernel; the half spectrum over the last
    axis, as produced by ``rfftn``.

    Shape:
        - kernel: :math:`(B, C, *k)`; lam: broadcastable to :math:`(B', C, 1, ...)`;
          sizes: the padded input size :math:`(n_1, ..., n_d)`.
        - output: complex :math:`(\max(B, B'), C, s n_1, ..., \lfloor s n_d/2\rfloor + 1)`.
    """
    with torch.autocast(kernel.device.type, enabled=False):
        out = [scale * size for size in sizes]
        _check_fits(kernel.shape[2:], out, "padded output")
        dims = tuple(range(2, kernel.dim()))
        k_hat = torch.fft.fftn(_otf_nd(kernel, out), dim=dims)
        denominator = _block_mean_nd(k_hat.real.square() + k_hat.imag.square(), scale) + lam
        repeats = (1, 1, *(scale for _ in sizes))
        if nearest_x0:
            box = _box_spectrum_nd(scale, out, kernel.dtype, kernel.device)
            q = (1 - _block_mean_nd(k_hat * box, scale)) / denominator
            g = k_hat.conj() * q.repeat(repeats) + box
        else:
            g = k_hat.conj() * denominator.reciprocal().repeat(repeats)
        return g[..., : out[-1] // 2 + 1]


def apply_spectral_filter_nd(y: Tensor, filt: Tensor, scale: int) -> Tensor:
    r"""Apply a filter from :func:`spectral_filter_nd` to a padded input: one FFT of
    ``y``, the spectrum tiled :math:`s` times per axis, the product, one inverse real FFT.

    Shape:
        - y: :math:`(N, C, n_1, ..., n_d)`; output: :math:`(N, C, s n_1, ..., s n_d)`.
    """
    ndim = y.dim() - 2
    dims = tuple(range(2, y.dim()))
    out = [scale * size for size in y.shape[2:]]
    if scale == 1:
        return torch.fft.irfftn(torch.fft.rfftn(y, dim=dims) * filt, s=out, dim=dims)
    y_hat = torch.fft.fftn(y, dim=dims)
    cols = torch.arange(out[-1] // 2 + 1, device=y.device) % y.shape[-1]
    tiled = y_hat.repeat(1, 1, *(scale for _ in range(ndim - 1)), 1).index_select(-1, cols)
    return torch.fft.irfftn(tiled * filt, s=out, dim=dims)


def _solve_fft(
    y: Tensor, kernel: Tensor, lam: Tensor, scale: int, x0: X0, make_filter: FilterMaker | None
) -> Tensor:
    """The spectral path on the padded grid."""
    sizes = tuple(y.shape[2:])
    apply = apply_converse2d_filter if len(sizes) == 2 else apply_spectral_filter_nd
    if x0 is None and make_filter is not None:
        filt = make_filter(kernel, *sizes)
    elif len(sizes) == 2:
        filt = reverse_conv_filter(kernel, lam, scale, *sizes, nearest_x0=x0 is None)
    else:
        filt = spectral_filter_nd(kernel, lam, scale, sizes, nearest_x0=x0 is None)
    if not isinstance(x0, Tensor):
        return apply(y, filt, scale)
    with torch.autocast(y.device.type, enabled=False):
        residual = y - _conv_downsample(x0, kernel, scale)
    return x0 + apply(residual, filt, scale)


# ---------------------------------------------------------------------------------------
# the shared body
# ---------------------------------------------------------------------------------------
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


def _crop(out: Tensor, crop: int) -> Tensor:
    if crop == 0:
        return out
    if _tracks_grad(out):
        return _Crop.apply(out, crop)
    return out[(..., *(slice(crop, size - crop) for size in out.shape[2:]))]


def _as_lambda(lam: LambdaArg, dtype: torch.dtype, x: Tensor) -> Tensor:
    if callable(lam):
        lam = lam(dtype)
    if isinstance(lam, Tensor):
        return lam.to(dtype)
    return torch.full((1,) * x.dim(), lam, dtype=dtype, device=x.device)


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
    compute dtype (float16/bfloat16 in float32), padding, the path, cropping.

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
    _check_fits(kernel_sizes, [scale * (size + 2 * padding) for size in sizes], "padded output")
    exact = spatial_path_applies(kernel_sizes, scale)
    if method == "spatial" and not exact:
        raise ValueError(
            "method='spatial' needs every kernel side <= scale (then the blocks of the "
            f"least-squares problem decouple), got kernel "
            f"{'x'.join(map(str, kernel_sizes))} and scale {scale}"
        )
    spatial = method == "spatial" or (method == "auto" and exact)
    dtype = _compute_dtype(x.dtype)
    if n == 0:  # an empty batch (FFT backends reject it); keep the autograd connection
        links = x.sum() + kernel.sum() + _as_lambda(lam, dtype, x).sum()
        if isinstance(x0, Tensor):
            links = links + x0.sum()
        return x.new_zeros(0, c, *(scale * size for size in sizes)) + 0 * links.to(x.dtype)

    kernel = kernel.to(dtype)
    if isinstance(x0, Tensor):
        x0 = x0.to(dtype)
    if spatial or x0 is not None or make_filter is None:
        lam = _as_lambda(lam, dtype, x)
    if spatial and not isinstance(x0, Tensor) and _cells_align(kernel_sizes):
        _check_reflect(sizes, padding, padding_mode)  # padding is not needed, but checked
        with torch.autocast(x.device.type, enabled=False):
            out = _solve_cells(x.to(dtype), kernel, lam, scale, x0 is None)
        return out.to(x.dtype)
    chunk = c if spatial or isinstance(x0, Tensor) else _channel_chunk(x, kernel, scale, padding)
    if chunk < c:  # a large input outside autograd: a few channels at a time (less memory)
        out = x.new_empty(n, c, *(scale * size for size in sizes), dtype=dtype)
        for start in range(0, c, chunk):
            part = slice(start, start + chunk)
            out[:, part] = solve(
                x[:, part],
                _channels(kernel, part, c),
                _channels(lam, part, c),
                scale,
                padding,
                padding_mode,
                x0,
                method,
                None,  # a chunk's filter is built from its λ; a layer caches whole filters only
            )
        return out.to(x.dtype)
    y = pad_nd(x.to(dtype), padding, padding_mode)
    if spatial:
        with torch.autocast(x.device.type, enabled=False):
            out = _solve_blocks(y, kernel, lam, scale, x0)
    else:
        out = _solve_fft(y, kernel, lam, scale, x0, make_filter)
    del y
    return _crop(out, padding * scale).to(x.dtype)


#: Outside autograd, an input whose spectrum would exceed this many bytes is solved a few
#: channels at a time (the channels are independent): an untiled 1024² Converse-DnCNN pass
#: then holds one chunk's padded input, spectrum and filter instead of all 128 channels'.
CHUNK_BYTES = 64 * 2**20


def _channel_chunk(x: Tensor, kernel: Tensor, scale: int, padding: int) -> int:
    """How many channels to solve at once (all of them when no chunking is needed)."""
    n, c, *sizes = x.shape
    if _tracks_grad(x, kernel) or is_export_friendly():  # (a graph takes whole tensors)
        return c
    padded = [scale * (size + 2 * padding) for size in sizes]
    values = n * math.prod(padded[:-1]) * (padded[-1] // 2 + 1)  # of the half spectrum
    per_channel = values * 2 * torch.finfo(_compute_dtype(x.dtype)).bits // 8
    return max(1, min(c, CHUNK_BYTES // max(per_channel, 1)))


def _channels(value, part: slice, count: int):
    """The channels ``part`` of a per-channel argument (a kernel, λ or a λ of the dtype)."""
    if callable(value):
        return lambda dtype: _channels(value(dtype), part, count)
    if isinstance(value, Tensor) and value.dim() > 1 and value.shape[1] == count:
        return value[:, part]
    return value


# ---------------------------------------------------------------------------------------
# public functional forms
# ---------------------------------------------------------------------------------------
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
    ndim = _check_input("y", y)
    check_options(scale, padding, padding_mode)
    check_choice("method", method, METHODS)
    _check_kernel(kernel, y, ndim)
    lam = _check_lambda(lam, y, ndim)
    _check_x0(x0, y, scale, padding)
    return solve(y, kernel, lam, scale, padding, padding_mode, x0, method)


def converse_forward(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    scale: int,
    padding: int,
    padding_mode: str,
    eps: float,
    ndim: int,
    make_filter: FilterMaker | None = None,
) -> Tensor:
    """The paper's parameterisation (λ = sigmoid(bias − 9) + eps, the nearest upsampling
    as X0) on :func:`solve`: the body of ``converse1d/2d/3d`` and of the layers."""
    check_converse_tensors(x, weight, bias, ndim)

    def lam(dtype: torch.dtype) -> Tensor:  # (not needed where a cached filter is used)
        return regularizer(bias.to(dtype), eps)

    return solve(x, weight, lam, scale, padding, padding_mode, None, "auto", make_filter)


def converse1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    scale: int = 1,
    padding: int = 2,
    padding_mode: str = "circular",
    eps: float = 1e-5,
) -> Tensor:
    r"""Converse2D over the last dimension of a signal: :func:`reverse_conv` with
    :math:`\lambda = \sigma(b - 9) + \varepsilon` and the paper's :math:`X_0`.

    Shape:
        - x: :math:`(N, C, L)`; weight: :math:`(1, C, k)`; bias: :math:`(1, C, 1)`.
        - output: :math:`(N, C, sL)`.

    Example:
        >>> converse1d(torch.rand(2, 4, 50), torch.full((1, 4, 5), 0.2), torch.zeros(1, 4, 1),
        ...            scale=2).shape
        torch.Size([2, 4, 100])
    """
    check_options(scale, padding, padding_mode, eps)
    return converse_forward(x, weight, bias, scale, padding, padding_mode, eps, 1)


def converse3d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    scale: int = 1,
    padding: int = 2,
    padding_mode: str = "circular",
    eps: float = 1e-5,
) -> Tensor:
    r"""Converse2D over the last three dimensions (volumes, video): :func:`reverse_conv`
    with :math:`\lambda = \sigma(b - 9) + \varepsilon` and the paper's :math:`X_0`.

    Shape:
        - x: :math:`(N, C, D, H, W)`; weight: :math:`(1, C, k, k, k)`; bias:
          :math:`(1, C, 1, 1, 1)`.
        - output: :math:`(N, C, sD, sH, sW)`.

    Example:
        >>> w = torch.full((1, 2, 3, 3, 3), 1 / 27)
        >>> converse3d(torch.rand(1, 2, 4, 8, 8), w, torch.zeros(1, 2, 1, 1, 1)).shape
        torch.Size([1, 2, 4, 8, 8])
    """
    check_options(scale, padding, padding_mode, eps)
    return converse_forward(x, weight, bias, scale, padding, padding_mode, eps, 3)


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
        >>> round(float((conv_downsample(x, k) - y).square().mean().sqrt()), 4)
        0.01
    """
    ndim = _check_input("y", y)
    _check_scale(scale)
    _check_kernel(kernel, y, ndim)
    sigma = check_real("noise_std", noise_std, minimum=0)
    low, high = (check_real("bounds", b) for b in bounds)
    if not 0 < low < high:
        raise ValueError(f"bounds must be 0 < low < high, got {tuple(bounds)}")
    if x0 is not None and x0 not in X0_KINDS:
        raise ValueError(f"x0 must be None or 'zero', got {x0!r}")
    sizes = y.shape[2:]
    _check_fits(kernel.shape[2:], [scale * n for n in sizes], "output")
    dtype = _compute_dtype(y.dtype)
    with torch.no_grad(), torch.autocast(y.device.type, enabled=False):
        y, kernel = y.detach().to(dtype), kernel.detach().to(dtype)
        dims = tuple(range(2, y.dim()))
        data = y if x0 is not None else y - _conv_downsample(_nearest(y, scale), kernel, scale)
        energy = torch.fft.fftn(data, dim=dims).abs().square()
        k_hat = torch.fft.fftn(_otf_nd(kernel, [scale * n for n in sizes]), dim=dims)
        power = _block_mean_nd(k_hat.abs().square(), scale)
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


# ---------------------------------------------------------------------------------------
# the literal formula, in any dimension: the reference of the tests
# ---------------------------------------------------------------------------------------
def reverse_conv_literal(
    y: Tensor,
    kernel: Tensor,
    lam: Tensor | float,
    scale: int = 1,
    padding: int = 0,
    padding_mode: str = "circular",
    x0: Tensor | str | None = None,
) -> Tensor:
    r"""The paper's closed form, step by step at the output resolution, in any dimension.

    .. math::

        X^\star = \mathcal F^{-1}\Big(\tfrac1\lambda\big(L - \operatorname{conj}(F_K)
        \operatorname{tile}_s\big[\operatorname{avg}_s(F_K L) /
        (\operatorname{avg}_s|F_K|^2 + \lambda)\big]\big)\Big),\quad
        L = \operatorname{conj}(F_K)\,\mathcal F(y\uparrow_s) + \lambda\,\mathcal F(X_0).

    Full complex FFTs of the zero-upsampled input and of the padded kernel, in the dtype
    of ``y`` (it divides by λ: use float64). Same arguments as :func:`reverse_conv`.
    """
    ndim = _check_input("y", y)
    check_options(scale, padding, padding_mode)
    _check_kernel(kernel, y, ndim)
    lam = _check_lambda(lam, y, ndim)
    _check_x0(x0, y, scale, padding)
    s = scale
    yp = pad_nd(y, padding, padding_mode)
    n, c, *sizes = yp.shape
    out = [s * size for size in sizes]
    _check_fits(kernel.shape[2:], out, "padded output")
    dims = tuple(range(2, yp.dim()))
    y_up = yp.new_zeros(n, c, *out)
    y_up[(..., *(slice(None, None, s) for _ in sizes))] = yp  # s - 1 zeros after each sample
    if x0 is None:
        x0 = _nearest(yp, s)
    elif isinstance(x0, str):
        x0 = torch.zeros_like(y_up)

    f_k = torch.fft.fftn(_otf_nd(kernel, out), dim=dims)
    f_k_conj = torch.conj(f_k)
    rhs = f_k_conj * torch.fft.fftn(y_up, dim=dims) + lam * torch.fft.fftn(x0, dim=dims)
    numerator = _block_mean_nd(f_k * rhs, s)
    denominator = _block_mean_nd(torch.abs(f_k) ** 2, s) + lam
    correction = f_k_conj * (numerator / denominator).repeat(1, 1, *(s for _ in sizes))
    result = torch.real(torch.fft.ifftn((rhs - correction) / lam, dim=dims))
    return _crop(result, padding * s)
