"""The FFT engine: the one place that decides which implementation runs the operator's
transforms.

An engine computes real and complex DFTs over the trailing axes of a tensor, exactly as
``torch.fft`` defines them (unnormalised forward transforms, :math:`1/n` inverse):

- :data:`POCKETFFT`: scipy's pocketfft, for CPU tensors outside autograd in eager mode. On
  the CPU, PyTorch's FFTs (MKL) are slower than pocketfft at the odd sizes a padded image
  has (268 = 4·67, 524 = 4·131; ``benchmarks/bench_fft.py``); pocketfft works on the same
  memory with PyTorch's thread count.
- :data:`TORCH`: ``torch.fft``, for everything else: tensors that autograd tracks (a
  Converse-DnCNN training step took 1.4 s through pocketfft, 1.0-1.1 s without;
  ``benchmarks/bench_training.py``), other devices, compiled graphs.

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
from collections.abc import Iterator, Sequence
from typing import Protocol

import scipy.fft
import torch
from torch import Tensor

from .checks import tracks_grad

__all__ = ["POCKETFFT", "TORCH", "Engine", "engine_for", "export_friendly", "is_export_friendly"]

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


class Engine(Protocol):
    """DFTs over the trailing axes, as ``torch.fft`` computes them.

    ``ndim`` counts the trailing axes transformed; ``sizes`` are the output sizes of the
    trailing axes of an inverse real transform. ``irfftn`` may overwrite its input.
    """

    name: str

    def rfftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor: ...

    def fftn(self, x: Tensor, ndim: int, *, out: Tensor | None = None) -> Tensor: ...

    def irfftn(
        self, x_hat: Tensor, sizes: Sequence[int], *, out: Tensor | None = None
    ) -> Tensor: ...


def _axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(-ndim, 0))


class TorchFFT:
    """The transforms of ``torch.fft``, for any device, autograd and compiled graphs."""

    name = "torch"

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


TORCH = TorchFFT()
POCKETFFT = PocketFFT()


def _workers() -> int:
    return torch.get_num_threads()


def _pocketfft_applies(*tensors: Tensor) -> bool:
    """Whether transforms of ``tensors`` run in pocketfft: CPU tensors that autograd does not
    track, in eager mode, outside the export-friendly formulation."""
    return (
        all(t.device.type == "cpu" for t in tensors)
        and not tracks_grad(*tensors)
        and not torch.compiler.is_compiling()
        and not is_export_friendly()
    )


def engine_for(*tensors: Tensor) -> Engine:
    """The engine that transforms ``tensors`` (see the module docstring)."""
    return POCKETFFT if _pocketfft_applies(*tensors) else TORCH
