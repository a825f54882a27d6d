"""The library internals the benchmarks switch, in one module.

The benchmarks measure the library through its public API (``conversenet``,
``conversenet.functional``, ``conversenet.models``, ``conversenet.runner``, ...), except
for the switches below, which replace a private function of the module that calls it.
Only this module imports those modules: when they move, repoint the imports here (a
switch set on a re-exporting alias would change nothing; tests/test_benchmarks.py checks
that every switch takes effect).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from torch import Tensor, nn

import conversenet.operator.fft as _fft  # engine_for calls _library_applies, reads _ducc0
import conversenet.operator.solver as _reverse_conv  # calls spatial_path_applies
import conversenet.runner as _runner  # ModelRunner.restore_tile
from conversenet import Converse2D
from conversenet import functional as CF


def use_literal_operator(model: nn.Module) -> nn.Module:
    """Make every Converse2D of ``model`` run the paper's literal algorithm
    (:func:`conversenet.functional.converse2d_literal`) instead; returns ``model``."""
    for layer in model.modules():
        if isinstance(layer, Converse2D):

            def forward(x: Tensor, layer: Converse2D = layer) -> Tensor:
                return CF.converse2d_literal(
                    x, layer.weight, layer.bias, layer.scale, layer.padding, layer.padding_mode,
                    layer.eps,
                )  # fmt: skip

            layer.forward = forward
    return model


@contextlib.contextmanager
def _replaced(owner: object, name: str, value: object) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def fft_path_only() -> contextlib.AbstractContextManager:
    """Switch the operator's exact spatial path off (kernel sides <= scale then take the
    FFT path, as before the spatial path existed)."""
    return _replaced(_reverse_conv, "spatial_path_applies", lambda *args: False)


FFT_ENGINES = ("ducc0", "pocketfft", "torch")


def fft_engine(name: str) -> contextlib.AbstractContextManager:
    """Run the operator's CPU transforms outside autograd in one engine: ``"ducc0"`` (the
    default where it is installed), ``"pocketfft"`` (as without ducc0) or ``"torch"``
    (``torch.fft``, which runs those inside autograd in every case)."""
    if name == "torch":
        return _replaced(_fft, "_library_applies", lambda *t: False)
    if name == "pocketfft":
        return _replaced(_fft, "_ducc0", None)
    if name == "ducc0" and _fft._ducc0 is not None:
        return contextlib.nullcontext()
    raise ValueError(f"fft engine: expected one of {FFT_ENGINES} (ducc0 installed), got {name!r}")


def route_model_tiles(
    on_tile: Callable[[Tensor, Callable[[Tensor], Tensor]], Tensor],
) -> contextlib.AbstractContextManager:
    """Route every tile a :class:`conversenet.runner.ModelRunner` restores through
    ``on_tile(x, restore)`` (``restore(x)`` runs the model), e.g. to pass all but the
    first few tiles through unchanged."""
    original = _runner.ModelRunner.restore_tile

    def restore_tile(self, x: Tensor) -> Tensor:
        return on_tile(x, lambda t: original(self, t))

    return _replaced(_runner.ModelRunner, "restore_tile", restore_tile)
