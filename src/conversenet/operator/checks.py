"""The operator's argument checks, its padding and the constants of its parameterisation.

Every form of the reverse convolution (the functional forms, the solver, the layers, the
reference algorithms) checks its arguments here, with messages that say what was expected
and what was given, and pads its input with :func:`pad`. Also here: the compute dtype
(half precision runs in float32) and whether autograd records a call, which decide how
the other modules compute.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_choice, check_int, check_real

__all__ = [
    "BIAS_SHIFT",
    "METHODS",
    "PADDING_MODES",
    "X0_KINDS",
    "check_blur_kernel",
    "check_converse_tensors",
    "check_hyperparameters",
    "check_options",
    "pad",
    "regularizer",
]

PADDING_MODES = ("circular", "replicate", "reflect", "constant")
BIAS_SHIFT = 9.0  # λ = sigmoid(bias - 9) + eps: a zero bias gives λ ≈ 1.2e-4
#: The string values of ``x0`` (``None`` is the paper's nearest upsampling).
X0_KINDS = ("zero",)
#: How :func:`~conversenet.operator.solver.reverse_conv` solves: ``auto`` (the spatial
#: path wherever it is exact), ``fft`` or ``spatial``.
METHODS = ("auto", "fft", "spatial")

_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def regularizer(bias: Tensor, eps: float) -> Tensor:
    """The per-channel regularisation weight λ = sigmoid(bias − 9) + eps (same shape as bias)."""
    return torch.sigmoid(bias - BIAS_SHIFT) + eps


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the operator computes in: float16/bfloat16 in float32."""
    # There is no half-precision FFT on CPU, and half FFTs on CUDA only take powers of two.
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def tracks_grad(*tensors: Tensor) -> bool:
    """Whether autograd records operations on any of ``tensors`` here."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


# ---------------------------------------------------------------------------------------
# the non-tensor arguments
# ---------------------------------------------------------------------------------------
def check_hyperparameters(
    kernel_size: int, scale: int, padding: int, padding_mode: str, eps: float
) -> None:
    """Validate the constructor arguments of a Converse layer; raise TypeError/ValueError."""
    check_int("kernel_size", kernel_size, minimum=1)
    check_options(scale, padding, padding_mode, eps)


def check_options(scale: int, padding: int, padding_mode: str, eps: float | None = None) -> None:
    """Validate the non-tensor arguments of the operator; raise TypeError/ValueError."""
    check_scale(scale)
    check_int("padding", padding, minimum=0)
    check_choice("padding_mode", padding_mode, PADDING_MODES)
    if eps is not None:
        check_real("eps", eps, minimum=0)


def check_scale(scale: int) -> int:
    """``scale`` as an int >= 1."""
    if check_int("scale", scale) < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale}")
    return int(scale)


# ---------------------------------------------------------------------------------------
# the tensors
# ---------------------------------------------------------------------------------------
def _shape_text(ndim: int, prefix: str = "") -> str:
    return ", ".join(prefix + axis for axis in _AXES[ndim])


def _sizes_text(sizes: Sequence[int]) -> str:
    return "x".join(map(str, sizes))


def check_tensor(name: str, t: object) -> Tensor:
    """``t`` if it is a floating-point tensor."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {t.dtype}")
    return t


def check_input(name: str, x: object, ndim: int | None = None) -> int:
    """The number of spatial dimensions of a signal (N, C, *spatial): ``ndim``, or 1 to 3."""
    check_tensor(name, x)
    dims = (ndim,) if ndim is not None else (1, 2, 3)
    if x.dim() - 2 not in dims:
        expected = " or ".join(f"{d + 2}-D (N, C, {_shape_text(d)})" for d in dims)
        raise ValueError(f"{name} must be {expected}, got shape {tuple(x.shape)}")
    return x.dim() - 2


def check_converse_tensors(x: Tensor, weight: Tensor, bias: Tensor, ndim: int) -> None:
    """The tensors of the paper's parameterisation: input ``(N, C, *spatial)``, weight
    ``(1, C, *k)``, bias ``(1, C, 1, ...)``."""
    for name, t in (("input", x), ("weight", weight), ("bias", bias)):
        check_tensor(name, t)
    check_input("input", x, ndim)
    c = x.shape[1]
    if weight.dim() != ndim + 2 or weight.shape[:2] != (1, c):
        raise ValueError(
            f"weight must have shape (1, {c}, {_shape_text(ndim, 'k')}) for an input with "
            f"{c} channels, got {tuple(weight.shape)}"
        )
    expected = (1, c) + (1,) * ndim
    if tuple(bias.shape) != expected:
        raise ValueError(f"bias must have shape {expected}, got {tuple(bias.shape)}")


def check_kernel(kernel: object, x: Tensor, ndim: int, name: str = "input") -> None:
    """A kernel (1 or N, C, *k) for the signal ``x`` called ``name``."""
    check_tensor("kernel", kernel)
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


def check_blur_kernel(kernel: object, x: Tensor) -> Tensor:
    """The blur kernel of a non-blind model called on the images ``x`` (N, C, H, W): one
    kernel (kH, kW), or one for all or each image (1 or N, 1, kH, kW); as a 4-D tensor."""
    if not isinstance(kernel, Tensor):
        raise TypeError(f"kernel must be a torch.Tensor, got {type(kernel).__name__}")
    if kernel.dim() == 2:
        kernel = kernel[None, None]
    if kernel.dim() != 4 or kernel.shape[1] != 1:
        raise ValueError(
            f"kernel must have shape (N, 1, kH, kW) (or (kH, kW)), got {tuple(kernel.shape)}"
        )
    if kernel.shape[0] not in (1, x.shape[0]):
        raise ValueError(
            f"kernel batch size must be 1 or the image batch size {x.shape[0]}, "
            f"got {kernel.shape[0]}"
        )
    return kernel


def check_lambda(lam: object, x: Tensor, ndim: int) -> Tensor | float:
    """λ > 0: a number, or a tensor (1 or N, C, 1, ...), positive and finite."""
    if not isinstance(lam, Tensor):
        value = check_real("lam", lam)
        if value <= 0:
            raise ValueError(f"lam must be > 0, got {value:g}")
        return value
    check_tensor("lam", lam)
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


def check_x0(x0: object, x: Tensor, scale: int, padding: int) -> None:
    """``None``, ``"zero"`` or a tensor at the output resolution of the padded input."""
    if x0 is None:
        return
    if isinstance(x0, str):
        if x0 not in X0_KINDS:
            raise ValueError(f"x0 must be None, 'zero' or a tensor, got {x0!r}")
        return
    if not isinstance(x0, Tensor):
        raise TypeError(f"x0 must be None, 'zero' or a tensor, got {type(x0).__name__}")
    check_tensor("x0", x0)
    n, c, *sizes = x.shape
    expected = (n, c, *(scale * (size + 2 * padding) for size in sizes))
    if tuple(x0.shape) != expected:
        where = f" (the output size of the input padded by {padding})" if padding else ""
        raise ValueError(
            f"x0 must have shape {expected}{where}, scale {scale} times the "
            f"{'padded ' if padding else ''}input, got {tuple(x0.shape)}"
        )


def check_fits(kernel_sizes: Sequence[int], grid: Sequence[int], what: str) -> None:
    """Every kernel side at most the side of ``grid`` (called ``what``)."""
    if any(k > n for k, n in zip(kernel_sizes, grid, strict=True)):
        raise ValueError(
            f"kernel {_sizes_text(kernel_sizes)} does not fit the {what} {_sizes_text(grid)}; "
            "use a larger input or padding"
        )


def check_reflect(sizes: Sequence[int], padding: int, padding_mode: str) -> None:
    """Reflect padding needs every side larger than the padding."""
    if padding_mode == "reflect" and any(padding >= size for size in sizes):
        axes = "both axes" if len(sizes) == 2 else "every axis"
        raise ValueError(
            f"reflect padding {padding} needs an input larger than the padding on {axes}, "
            f"got {_sizes_text(sizes)}; use a smaller padding or another padding_mode"
        )


# ---------------------------------------------------------------------------------------
# padding
# ---------------------------------------------------------------------------------------
def pad(x: Tensor, padding: int, padding_mode: str) -> Tensor:
    """Pad every spatial dimension of ``(N, C, *spatial)`` by ``padding`` on each side.

    Shape:
        - x: :math:`(N, C, n_1, ..., n_d)`; output: :math:`(N, C, n_1 + 2p, ..., n_d + 2p)`.
    """
    if padding == 0:
        return x
    check_reflect(x.shape[2:], padding, padding_mode)
    if padding_mode == "circular" and channels_innermost(x) and padding <= min(x.shape[2:]):
        return _pad_circular_channels_last(x, padding)
    return F.pad(x, (padding,) * (2 * (x.dim() - 2)), mode=padding_mode)


def channels_innermost(x: Tensor) -> bool:
    """Whether ``x`` is an (N, C, H, W) tensor stored channels-last (C the fastest axis),
    as a block's inference path keeps its features (``F.pad`` would return it in NCHW)."""
    return x.dim() == 4 and x.shape[1] > 1 and x.stride(1) == 1 and not x.is_contiguous()


def _pad_circular_channels_last(x: Tensor, p: int) -> Tensor:
    """Circular padding by ``p`` (at most the size of each axis) into a channels-last
    tensor: the same values as ``F.pad(x, (p,) * 4, mode="circular")``."""
    n, c, h, w = x.shape
    out = torch.empty(
        (n, c, h + 2 * p, w + 2 * p),
        dtype=x.dtype,
        device=x.device,
        memory_format=torch.channels_last,
    )
    out[:, :, p : p + h, p : p + w] = x
    out[:, :, :p, p : p + w] = x[:, :, h - p :]
    out[:, :, p + h :, p : p + w] = x[:, :, :p]
    out[:, :, :, :p] = out[:, :, :, w : w + p]
    out[:, :, :, p + w :] = out[:, :, :, p : 2 * p]
    return out
