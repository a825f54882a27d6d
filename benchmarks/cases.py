"""The Converse2D operator cases that more than one benchmark times (as data), and their
inputs: ``bench_converse2d`` times them on the CPU, ``gpu_report`` on a device."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from benchmarks.harness import autocast
from conversenet import Converse2D
from conversenet import functional as CF


@dataclass(frozen=True)
class OperatorCase:
    """A Converse2D call: ``batch × channels × size²``, kernel, padding and scale; for
    ``training`` cases forward and backward; ``target``: the speed-up asked for."""

    name: str
    channels: int
    size: int
    kernel_size: int
    padding: int
    padding_mode: str
    scale: int
    batch: int = 1
    training: bool = False
    target: float | None = None

    def describe(self) -> str:
        return (
            f"{self.name}: {self.batch}×{self.channels}×{self.size}², s={self.scale}, "
            f"k={self.kernel_size}, pad {self.padding} {self.padding_mode}"
        )

    def shrunk(self) -> OperatorCase:
        """The --quick version: a quarter of the channels and of the side, batch <= 2."""
        return dataclasses.replace(
            self,
            name=self.name + " (quick)",
            batch=min(self.batch, 2),
            channels=max(4, self.channels // 4),
            size=max(4 * self.padding + self.kernel_size, self.size // 4),
        )

    def operator_args(self, layer: Converse2D) -> tuple:
        """``(scale, padding, padding_mode, eps)``: the functional form's arguments."""
        return (self.scale, self.padding, self.padding_mode, layer.eps)


# the paper's configurations (float32, batch 1)
CONVERSE2D_CASES = (
    OperatorCase("inference s=1", 128, 256, 7, 6, "circular", 1, target=8.0),
    OperatorCase("inference s=2", 64, 128, 2, 2, "replicate", 2, target=5.0),
    OperatorCase("training s=1", 64, 96, 5, 4, "circular", 1, training=True, target=6.0),
)


def converse2d_inputs(
    case: OperatorCase, device: torch.device | str = "cpu"
) -> tuple[Converse2D, Tensor]:
    """The case's layer (seed 0, a trained-looking regulariser: biases drawn in [-2, 2]
    instead of the zero initialisation) and a random input in [0, 1)."""
    torch.manual_seed(0)
    c = case.channels
    layer = Converse2D(c, c, case.kernel_size, case.scale, case.padding, case.padding_mode)
    with torch.no_grad():
        layer.bias.uniform_(-2.0, 2.0)
    layer = layer.to(device)
    return layer, torch.rand(case.batch, c, case.size, case.size, device=device)


def converse2d_calls(
    case: OperatorCase,
    layer: Converse2D,
    x: Tensor,
    backward: bool,
    precision: str = "float32",
    device: torch.device | str = "cpu",
) -> dict[str, Callable[[], Tensor]]:
    """Zero-argument calls of the case: ``ours`` (the layer; in eval mode it caches its
    filter after the first call), ``literal`` (``converse2d_literal``) and, forward only,
    ``functional`` (``converse2d``, the filter rebuilt every call).

    Forward calls run under ``torch.no_grad()`` and return the output; forward+backward
    calls (the layer in training mode) return the gradient of ``mean(output²)`` with
    respect to the input. ``precision``: autocast dtype (the input is cast to it, as a
    convolution inside autocast would see it).
    """
    args = case.operator_args(layer)
    xin = x if precision == "float32" else x.to(getattr(torch, precision))

    def literal(t: Tensor) -> Tensor:
        return CF.converse2d_literal(t, layer.weight, layer.bias, *args)

    if backward:
        layer.train()
        xg = xin.detach().requires_grad_()

        def step(fn: Callable[[Tensor], Tensor]) -> Callable[[], Tensor]:
            def call() -> Tensor:
                xg.grad = layer.weight.grad = layer.bias.grad = None
                with autocast(device, precision):
                    out = fn(xg)
                out.float().square().mean().backward()
                return xg.grad

            return call

        return {"ours": step(layer), "literal": step(literal)}

    layer.eval()

    def infer(fn: Callable[[Tensor], Tensor]) -> Callable[[], Tensor]:
        def call() -> Tensor:
            with torch.no_grad(), autocast(device, precision):
                return fn(xin)

        return call

    return {
        "ours": infer(layer),
        "literal": infer(literal),
        "functional": infer(lambda t: CF.converse2d(t, layer.weight, layer.bias, *args)),
    }


def float64_reference(case: OperatorCase, layer: Converse2D, x: Tensor, backward: bool) -> Tensor:
    """The case in float64: the output, or (``backward``) the gradient of
    ``mean(output²)`` with respect to the input."""
    x64 = x.detach().double().requires_grad_(backward)
    weight, bias = layer.weight.detach().double(), layer.bias.detach().double()
    with torch.set_grad_enabled(backward):
        out = CF.converse2d(x64, weight, bias, *case.operator_args(layer))
        if not backward:
            return out
        out.square().mean().backward()
    return x64.grad


def relative_error(value: Tensor, reference: Tensor) -> float:
    """max |value − reference| / max |reference|, in float64."""
    diff = (value.detach().double() - reference.double()).abs().max()
    return (diff / reference.double().abs().max().clamp_min(1e-300)).item()
