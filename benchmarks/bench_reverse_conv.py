"""Benchmark of the operator beyond the paper: 1-D and 3-D, the exact spatial path, and
per-sample kernels with an explicit X0, each against the literal formula.

Cases (float32, inference under ``torch.no_grad()``, CPU):

* ``1-D s=1``: Converse1d, C=64, L=32768, kernel 7, padding 6, circular;
* ``1-D s=2``: Converse1d, C=64, L=16384, kernel 5, padding 4, replicate;
* ``3-D s=1``: Converse3d, C=16, 48³ volume, kernel 3, padding 2, circular;
* ``3-D s=2``: Converse3d, C=16, 16×64×64 video (T×H×W), kernel 3, padding 1, replicate;
* ``2-D k=2 s=2``: Converse2D, C=64, 128², padding 2, replicate (the ×2 upsampler of
  Converse-SRResNet): the spatial path against the FFT path it replaces;
* ``2-D per-sample``: ``reverse_conv`` with one 7×7 kernel per sample (N=4, C=3, 256²),
  per-sample λ and ``x0="zero"`` (a batched Wiener data step).

Variants: ``literal`` (:func:`conversenet.functional.reverse_conv_literal`, the paper's
formula step by step), the layer in eval mode with its filter cache warm (``layer``),
the functional form rebuilding everything each call (``functional``), and for the
upsampler the layer with the spatial path switched off (``layer, FFT path``). Variants
of a case run interleaved (``benchmarks/harness.py``); medians of wall and process CPU time;
speed-ups are ratios of medians in the same run. The last column: the largest
difference from the float64 result relative to its largest value.

    python -m benchmarks.bench_reverse_conv --repeats 5
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from benchmarks import harness
from benchmarks.cases import relative_error
from benchmarks.internals import fft_path_only
from conversenet import Converse1d, Converse2D, Converse3d
from conversenet.functional import (
    converse1d,
    converse2d,
    converse3d,
    reverse_conv,
    reverse_conv_literal,
)

THREE = ("literal", "layer", "functional")


@dataclass(frozen=True)
class Case:
    """A reverse-convolution call; ``layer`` None: per-sample kernels (N=4), λ and X0=0."""

    name: str
    layer: type | None
    channels: int
    size: tuple[int, ...]
    kernel_size: int
    padding: int
    padding_mode: str
    scale: int
    variants: tuple[str, ...] = THREE

    def shrunk(self) -> Case:
        """The --quick version: an eighth of each side (at least 8), at most 8 channels."""
        size = tuple(max(8, n // 8) for n in self.size)
        return dataclasses.replace(self, channels=min(self.channels, 8), size=size)


CASES = (
    Case("1-D s=1", Converse1d, 64, (32768,), 7, 6, "circular", 1),
    Case("1-D s=2", Converse1d, 64, (16384,), 5, 4, "replicate", 2),
    Case("3-D s=1", Converse3d, 16, (48, 48, 48), 3, 2, "circular", 1),
    Case("3-D s=2", Converse3d, 16, (16, 64, 64), 3, 1, "replicate", 2),
    Case(
        "2-D k=2 s=2", Converse2D, 64, (128, 128), 2, 2, "replicate", 2,
        ("literal", "layer, FFT path", "layer"),
    ),
    Case("2-D per-sample", None, 3, (256, 256), 7, 0, "circular", 1, ("literal", "functional")),
)  # fmt: skip
FUNCTIONAL = {Converse1d: converse1d, Converse2D: converse2d, Converse3d: converse3d}


def setup(case: Case):
    """(layer, input, None) or, per-sample, (None, input, (kernels, λ)); seed 0."""
    torch.manual_seed(0)
    if case.layer is None:  # per-sample kernels, per-sample λ, X0 = 0
        n = 4
        y = torch.rand(n, case.channels, *case.size)
        kernel = torch.softmax(torch.randn(n, case.channels, case.kernel_size**2), -1)
        kernel = kernel.view(n, case.channels, case.kernel_size, case.kernel_size)
        lam = 0.01 + 0.05 * torch.rand(n, case.channels, 1, 1)
        return None, y, (kernel, lam)
    c = case.channels
    layer = case.layer(c, c, case.kernel_size, case.scale, case.padding, case.padding_mode)
    with torch.no_grad():  # a trained-looking regulariser and kernels not summing to one
        layer.bias.uniform_(-2.0, 2.0)
        layer.weight.mul_(1 + 0.2 * torch.rand_like(layer.weight))
    return layer.eval(), torch.rand(1, c, *case.size), None


def build(case: Case, variant: str) -> Callable[[], torch.Tensor]:
    layer, y, extra = setup(case)
    options = (case.scale, case.padding, case.padding_mode)
    if layer is None:
        kernel, lam = extra
        fn = reverse_conv_literal if variant == "literal" else reverse_conv
        return lambda: fn(y, kernel, lam, *options, "zero")
    lam = layer.regularizer().detach()

    def run() -> torch.Tensor:
        with torch.no_grad():
            if variant == "literal":
                return reverse_conv_literal(y, layer.weight, lam, *options)
            if variant == "functional":
                return FUNCTIONAL[case.layer](y, layer.weight, layer.bias, *options, layer.eps)
            if variant == "layer, FFT path":
                with fft_path_only():
                    return layer(y)
            return layer(y)

    return run


def float64_reference(case: Case) -> torch.Tensor:
    layer, y, extra = setup(case)
    options = (case.scale, case.padding, case.padding_mode)
    with torch.no_grad():
        if layer is None:
            kernel, lam = (t.double() for t in extra)
            return reverse_conv(y.double(), kernel, lam, *options, "zero")
        layer = layer.double()
        return reverse_conv(y.double(), layer.weight, layer.regularizer(), *options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=(5, 1), warmup=(2, 1))
    parser.add_argument("--cases", default="all", help="comma-separated case numbers (1-6)")
    args = parser.parse_args(argv)
    try:
        chosen = harness.choose(CASES, args.cases)
    except ValueError as exc:
        parser.error(str(exc))
    results = harness.Results(args.benchmark)
    print(
        harness.run_header(f"{args.repeats} repeats after {args.warmup} warm-up round(s), float32")
        + "\n"
    )
    headers = ("case", "variant", "ms (wall / cpu)", "speed-up vs literal (wall / cpu)")
    print(harness.markdown_table((*headers, "rel. error"), []), end="")
    for case in chosen:
        case = case.shrunk() if args.quick else case
        calls = {v: build(case, v) for v in case.variants}
        reference = float64_reference(case)
        times = harness.interleave(calls, args.repeats, args.warmup)
        lit = times["literal"]
        for v, t in times.items():
            error = relative_error(t.result, reference)
            results.add(
                case.name, v, size=harness.side(case.size), timing=t, baseline=lit,
                rel_error=error, shape="x".join(map(str, case.size)),
            )  # fmt: skip
            row = (case.name, v, harness.ms_cell(t), harness.speedup_cell(lit, t), f"{error:.0e}")
            print(harness.markdown_row(row), flush=True)
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
