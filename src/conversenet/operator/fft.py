"""The FFT engine: the one place that decides which implementation runs the operator's
transforms.

An engine computes real and complex DFTs over the trailing axes of a tensor, exactly as
``torch.fft`` defines them (unnormalised forward transforms, :math:`1/n` inverse):

- :data:`DUCC0`: ducc0 (the maintained successor of pocketfft, by the same author), for
  float32/float64 CPU tensors outside autograd in eager mode. It writes into the tensors'
  memory with PyTorch's thread count; the operator lends it reused scratch buffers
  (:func:`scratch`) so that a transform fills no fresh pages. At the padded sizes of an
  image (268 = 4·67, 524 = 4·131) its real transforms take about half the time of
  scipy's pocketfft (``benchmarks/bench_fft.py``).
- :data:`POCKETFFT`: scipy's pocketfft, in ducc0's place where ducc0 is not installed.
  On the CPU, PyTorch's FFTs (MKL) are slower than either at those sizes.
- :data:`TORCH`: ``torch.fft``, for everything else: tensors that autograd tracks (a
  custom autograd function around ducc0, with the exact adjoint as its backward, made
  Converse-DnCNN's training step slower, as pocketfft's had; docs/performance.md),
  other devices (CUDA keeps cuFFT), compiled graphs, other dtypes.

:func:`engine_for` makes the choice for every transform of a signal. In the
*export-friendly* formulation (:func:`export_friendly`, and always inside
``torch.onnx.export``) the operator runs no engine: its 2-D transforms are the real matrix
products of :mod:`conversenet.operator.dft`, which every ONNX runtime runs exactly. Only
the references call ``torch.fft`` themselves (the literal formula, the textbook pieces of
:mod:`~conversenet.operator.spectral`, the 1-D spectra of the box); the discrepancy
principle asks for :data:`TORCH` by name.

A new engine implements :class:`Engine` (``out=``, when given, is a preallocated result
of the right shape and dtype) and is chosen in :func:`engine_for`.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Protocol

import scipy.fft
import torch
from torch import Tensor

from .checks import tracks_grad

try:  # a dependency wherever it has wheels; pocketfft and torch.fft stand in without it
    import ducc0.fft as _ducc0
except ImportError:  # pragma: no cover - exercised by patching _ducc0 in the tests
    _ducc0 = None

__all__ = [
    "DUCC0",
    "POCKETFFT",
    "TORCH",
    "WORKSPACE_BYTES",
    "Engine",
    "Workspace",
    "autocast_off",
    "engine_for",
    "export_friendly",
    "is_export_friendly",
    "is_tracing",
    "scratch",
]

_force_export_friendly = False


@contextlib.contextmanager
def export_friendly(enabled: bool = True) -> Iterator[None]:
    """Use the export-friendly formulation (real arithmetic, matrix-product DFTs) inside
    this block.

    ONNX export: the converter of ``torch.onnx.export(..., dynamo=True)`` lowers only a few
    operations on complex tensors, and onnxruntime's ``DFT`` kernel is slow and, for
    lengths that are not powers of two, inaccurate. ``torch.onnx.export`` switches to this
    formulation by itself (same closed form: the filter as real and imaginary parts, the
    transforms as matrix products of :mod:`conversenet.operator.dft`); this context
    manager forces it in eager mode (to test it, or for another exporter). It concerns
    2-D signals; layers do not cache filters meanwhile.
    """
    global _force_export_friendly
    previous, _force_export_friendly = _force_export_friendly, bool(enabled)
    try:
        yield
    finally:
        _force_export_friendly = previous


def is_export_friendly() -> bool:
    """Whether the operator currently runs its export-friendly formulation."""
    return _force_export_friendly or torch.onnx.is_in_onnx_export()


def is_tracing() -> bool:
    """Whether an exporter or compiler traces the model (Python loops get unrolled)."""
    return torch.compiler.is_compiling() or is_export_friendly()


def autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """``torch.autocast(device_type, enabled=False)``, or no context while exporting (no
    autocast is on then, and an exporter traces the block as an extra sub-graph: a fifth
    of the export time of full-depth Converse-DnCNN)."""
    if is_export_friendly():
        return contextlib.nullcontext()
    return torch.autocast(device_type, enabled=False)


class Engine(Protocol):
    """DFTs over the trailing axes, as ``torch.fft`` computes them.

    ``ndim`` counts the trailing axes transformed; ``sizes`` are the output sizes of the
    trailing axes of an inverse real transform. ``irfftn`` may overwrite its input.
    ``takes_scratch``: whether the operator lends it CPU scratch buffers as ``out=`` (an
    engine that writes into them; not ``torch.fft``, which serves every device and
    compiled graphs, nor pocketfft, which would copy its result there).
    """

    name: str
    takes_scratch: bool

    def rfftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor: ...

    def fftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor: ...

    def irfftn(
        self, x_hat: Tensor, sizes: Sequence[int], *, out: Tensor | None = None
    ) -> Tensor: ...


def _axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


def _workers() -> int:
    return torch.get_num_threads()


class TorchFFT:
    """The transforms of ``torch.fft``, for any device, autograd and compiled graphs."""

    name = "torch"
    takes_scratch = False

    def rfftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor:
        return torch.fft.rfftn(x, dim=_axes(ndim), out=out)

    def fftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor:
        return torch.fft.fftn(x, dim=_axes(ndim), out=out)

    def irfftn(self, x_hat: Tensor, sizes: Sequence[int], *, out: Tensor | None = None) -> Tensor:
        return torch.fft.irfftn(x_hat, s=tuple(sizes), dim=_axes(len(sizes)), out=out)


class PocketFFT:
    """The transforms of scipy's pocketfft on the tensors' memory, with PyTorch's thread
    count, for CPU tensors outside autograd only."""

    name = "pocketfft"
    takes_scratch = False

    @staticmethod
    def _result(array, out: Tensor | None) -> Tensor:
        result = torch.from_numpy(array)
        return result if out is None else out.copy_(result)

    def rfftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor:
        array = scipy.fft.rfftn(x.detach().numpy(), axes=_axes(ndim), workers=_workers())
        return self._result(array, out)

    def fftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor:
        array = scipy.fft.fftn(x.detach().numpy(), axes=_axes(ndim), workers=_workers())
        return self._result(array, out)

    def irfftn(self, x_hat: Tensor, sizes: Sequence[int], *, out: Tensor | None = None) -> Tensor:
        array = scipy.fft.irfftn(
            x_hat.detach().numpy(),
            s=tuple(sizes),
            axes=_axes(len(sizes)),
            workers=_workers(),
            overwrite_x=True,
        )
        return self._result(array, out)


# ---------------------------------------------------------------------------------------
# ducc0
# ---------------------------------------------------------------------------------------
_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
_REAL = {complex_: real for real, complex_ in _COMPLEX.items()}


def _layout(x: Tensor) -> torch.memory_format:
    """The memory format of a result computed from ``x``: channels-last where ``x`` is (and
    is not also contiguous), else contiguous."""
    if x.is_contiguous():
        return torch.contiguous_format
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return torch.contiguous_format


def _empty(shape: Sequence[int], dtype: torch.dtype, like: Tensor) -> Tensor:
    return torch.empty(tuple(shape), dtype=dtype, memory_format=_layout(like))


def _array(t: Tensor):
    """The NumPy view of a CPU tensor's memory (a conjugate or negative view resolved
    first: into a copy)."""
    return t.detach().resolve_conj().resolve_neg().numpy()


def _positive_axes(t: Tensor, ndim: int) -> tuple[int, ...]:
    return tuple(range(t.dim() - ndim, t.dim()))


def _r2c(x: Tensor, ndim: int, out: Tensor | None) -> Tensor:
    if out is None:
        out = _empty((*x.shape[:-1], x.shape[-1] // 2 + 1), _COMPLEX[x.dtype], x)
    axes = _positive_axes(x, ndim)
    _ducc0.r2c(_array(x), axes=axes, out=out.detach().numpy(), nthreads=_workers())
    return out


def _c2c(x: Tensor, ndim: int, out: Tensor | None) -> Tensor:
    if out is None:
        out = _empty(x.shape, _COMPLEX.get(x.dtype, x.dtype), x)
    axes = _positive_axes(x, ndim)
    _ducc0.c2c(_array(x), axes=axes, out=out.detach().numpy(), nthreads=_workers())
    return out


def _c2r(x_hat: Tensor, sizes: Sequence[int], out: Tensor | None) -> Tensor:
    """The inverse real transform; overwrites ``x_hat``."""
    if out is None:
        out = _empty((*x_hat.shape[: -len(sizes)], *sizes), _REAL[x_hat.dtype], x_hat)
    _ducc0.c2r(
        _array(x_hat),
        axes=_positive_axes(x_hat, len(sizes)),
        lastsize=sizes[-1],
        forward=False,
        inorm=2,  # 1/n, as torch.fft.irfftn
        out=out.detach().numpy(),
        nthreads=_workers(),
        allow_overwriting_input=True,
    )
    return out


def _half_spectrum_fits(x_hat: Tensor, sizes: Sequence[int]) -> bool:
    """Whether ``x_hat`` is exactly the half spectrum of a signal of ``sizes`` (else
    ``torch.fft.irfftn`` would crop or zero-pad it first)."""
    expected = (*sizes[:-1], sizes[-1] // 2 + 1)
    return x_hat.dim() >= len(sizes) and tuple(x_hat.shape[-len(sizes) :]) == expected


class Ducc0FFT:
    """The transforms of ducc0 on the tensors' memory, with PyTorch's thread count, for
    float32/float64 CPU tensors (real or complex) outside autograd."""

    name = "ducc0"
    takes_scratch = True

    def rfftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor:
        return _r2c(x, ndim, out)

    def fftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor:
        return _c2c(x, ndim, out)

    def irfftn(self, x_hat: Tensor, sizes: Sequence[int], *, out: Tensor | None = None) -> Tensor:
        sizes = tuple(sizes)
        if not _half_spectrum_fits(x_hat, sizes):
            return TORCH.irfftn(x_hat, sizes, out=out)
        return _c2r(x_hat, sizes, out)


TORCH = TorchFFT()
POCKETFFT = PocketFFT()
DUCC0 = Ducc0FFT()

_LIBRARY_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def _library_applies(*tensors: Tensor) -> bool:
    """Whether transforms of ``tensors`` run in a CPU library (ducc0 or pocketfft):
    float32/float64 (real or complex) CPU tensors that autograd does not track, in eager
    mode, outside the export-friendly formulation."""
    return (
        all(t.device.type == "cpu" and t.dtype in _LIBRARY_DTYPES for t in tensors)
        and not tracks_grad(*tensors)
        and not torch.compiler.is_compiling()
        and not is_export_friendly()
    )


def engine_for(*tensors: Tensor) -> Engine:
    """The engine that transforms ``tensors`` (see the module docstring)."""
    if not _library_applies(*tensors):
        return TORCH
    return POCKETFFT if _ducc0 is None else DUCC0


# ---------------------------------------------------------------------------------------
# scratch buffers
# ---------------------------------------------------------------------------------------
#: The most memory one thread's :class:`Workspace` keeps between calls: room for the
#: spectra of two channel chunks of the solver (64 MiB each).
WORKSPACE_BYTES = 128 * 2**20


class Workspace:
    """Scratch tensors of one thread, lent for the span of a ``with`` block and kept for
    the next request of the same shape, dtype and layout.

    A borrowed buffer is out of the pool until its block ends, so it is never lent twice
    at once; a second request of the same kind meanwhile gets a new tensor. Between calls
    the pool keeps at most ``max_bytes`` (the least recently returned buffers go first);
    a larger buffer is never kept.
    """

    def __init__(self, max_bytes: int = WORKSPACE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._free: OrderedDict[tuple, Tensor] = OrderedDict()

    @property
    def nbytes(self) -> int:
        """The memory the pool holds now."""
        return sum(t.numel() * t.element_size() for t in self._free.values())

    @contextlib.contextmanager
    def borrow(self, shape: Sequence[int], dtype: torch.dtype, like: Tensor) -> Iterator[Tensor]:
        """A CPU tensor of ``shape`` and ``dtype`` in the layout of ``like`` (uninitialised),
        for the span of the block."""
        key = (tuple(shape), dtype, _layout(like))
        buffer = self._free.pop(key, None)
        if buffer is None:
            with torch.inference_mode(False):  # an inference tensor would be read-only after
                buffer = _empty(shape, dtype, like)
        try:
            yield buffer
        finally:
            self._keep(key, buffer)

    def _keep(self, key: tuple, buffer: Tensor) -> None:
        if key in self._free or buffer.numel() * buffer.element_size() > self.max_bytes:
            return
        self._free[key] = buffer
        while self.nbytes > self.max_bytes:
            self._free.popitem(last=False)

    def clear(self) -> None:
        """Free every kept buffer."""
        self._free.clear()


_local = threading.local()


def workspace() -> Workspace:
    """The calling thread's :class:`Workspace` (freed with the thread)."""
    if not hasattr(_local, "workspace"):
        _local.workspace = Workspace()
    return _local.workspace


def scratch(shape: Sequence[int], dtype: torch.dtype, like: Tensor):
    """A scratch tensor from the calling thread's :class:`Workspace` for the span of a
    ``with`` block: what the operator's transforms write their temporaries into."""
    return workspace().borrow(shape, dtype, like)
