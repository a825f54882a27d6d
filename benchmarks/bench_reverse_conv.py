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
of a case run interleaved ``--repeats`` times; medians of wall and process CPU time;
speed-ups are ratios of medians in the same run. The last column: the largest
difference from the float64 result relative to its largest value.

    python benchmarks/bench_reverse_conv.py --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

import conversenet.operator.solver as RC
from conversenet import Converse1d, Converse2D, Converse3d
from conversenet.functional import (
    converse1d,
    converse2d,
    converse3d,
    reverse_conv,
    reverse_conv_literal,
)

from common import interleaved_times, machine_load


@dataclass(frozen=True)
class Case:
    name: str
    layer: type | None
    channels: int
    size: tuple[int, ...]
    kernel_size: int
    padding: int
    padding_mode: str
    scale: int
    variants: tuple[str, ...]


CASES = (
    Case(
        "1-D s=1", Converse1d, 64, (32768,), 7, 6, "circular", 1, ("literal", "layer", "functional")
    ),
    Case(
        "1-D s=2",
        Converse1d,
        64,
        (16384,),
        5,
        4,
        "replicate",
        2,
        ("literal", "layer", "functional"),
    ),
    Case(
        "3-D s=1",
        Converse3d,
        16,
        (48, 48, 48),
        3,
        2,
        "circular",
        1,
        ("literal", "layer", "functional"),
    ),
    Case(
        "3-D s=2",
        Converse3d,
        16,
        (16, 64, 64),
        3,
        1,
        "replicate",
        2,
        ("literal", "layer", "functional"),
    ),
    Case(
        "2-D k=2 s=2",
        Converse2D,
        64,
        (128, 128),
        2,
        2,
        "replicate",
        2,
        ("literal", "layer, FFT path", "layer"),
    ),
    Case("2-D per-sample", None, 3, (256, 256), 7, 0, "circular", 1, ("literal", "functional")),
)
FUNCTIONAL = {Converse1d: converse1d, Converse2D: converse2d, Converse3d: converse3d}


@contextlib.contextmanager
def fft_path_only():
    """Switch the spatial path off (the operator as it was before it existed)."""
    original = RC.spatial_path_applies
    RC.spatial_path_applies = lambda *args: False
    try:
        yield
    finally:
        RC.spatial_path_applies = original


def setup(case: Case, dtype=torch.float32):
    torch.manual_seed(0)
    if case.layer is None:  # per-sample kernels, per-sample λ, X0 = 0
        n = 4
        y = torch.rand(n, case.channels, *case.size, dtype=dtype)
        kernel = torch.softmax(torch.randn(n, case.channels, case.kernel_size**2), -1)
        kernel = kernel.view(n, case.channels, case.kernel_size, case.kernel_size).to(dtype)
        lam = (0.01 + 0.05 * torch.rand(n, case.channels, 1, 1)).to(dtype)
        return None, y, (kernel, lam)
    c = case.channels
    layer = case.layer(c, c, case.kernel_size, case.scale, case.padding, case.padding_mode)
    with torch.no_grad():  # a trained-looking regulariser and kernels not summing to one
        layer.bias.uniform_(-2.0, 2.0)
        layer.weight.mul_(1 + 0.2 * torch.rand_like(layer.weight))
    layer = layer.to(dtype).eval()
    return layer, torch.rand(1, c, *case.size, dtype=dtype), None


def build(case: Case, variant: str) -> Callable[[], torch.Tensor]:
    layer, y, extra = setup(case)
    if layer is None:
        kernel, lam = extra
        fn = reverse_conv_literal if variant == "literal" else reverse_conv
        return lambda: fn(y, kernel, lam, case.scale, case.padding, case.padding_mode, "zero")
    args = (case.scale, case.padding, case.padding_mode)
    lam = layer.regularizer().detach()

    def run() -> torch.Tensor:
        with torch.no_grad():
            if variant == "literal":
                return reverse_conv_literal(y, layer.weight, lam, *args)
            if variant == "functional":
                fn = FUNCTIONAL[case.layer]
                return fn(y, layer.weight, layer.bias, *args, layer.eps)
            if variant == "layer, FFT path":
                with fft_path_only():
                    return layer(y)
            return layer(y)

    return run


def float64_reference(case: Case) -> torch.Tensor:
    layer, y, extra = setup(case)
    with torch.no_grad():
        if layer is None:
            kernel, lam = (t.double() for t in extra)
            return reverse_conv(
                y.double(), kernel, lam, case.scale, case.padding, case.padding_mode, "zero"
            )
        layer = layer.double()
        return reverse_conv(
            y.double(),
            layer.weight,
            layer.regularizer(),
            case.scale,
            case.padding,
            case.padding_mode,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per variant")
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="untimed rounds first (>= 1; layers keep filters from the 2nd)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--cases", default="all", help="comma-separated case numbers (1-6)")
    args = parser.parse_args()
    if args.warmup < 1 or args.repeats < 1:
        parser.error("--warmup and --repeats must be >= 1")
    torch.set_num_threads(args.threads)
    chosen = (
        range(len(CASES)) if args.cases == "all" else [int(i) - 1 for i in args.cases.split(",")]
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.repeats} "
        f"repeats after {args.warmup} warm-up round(s), float32; {machine_load()}\n"
    )
    print("| case | variant | ms (wall / cpu) | speed-up vs literal (wall / cpu) | rel. error |")
    print("|---|---|---|---|---|")
    for i in chosen:
        case = CASES[i]
        calls = {v: build(case, v) for v in case.variants}
        outputs = {v: fn() for v, fn in calls.items()}
        reference = float64_reference(case)
        times = interleaved_times(calls, args.repeats, args.warmup)
        lit = times["literal"]
        for v in case.variants:
            t = times[v]
            error = (outputs[v].double() - reference).abs().max() / reference.abs().max()
            print(
                f"| {case.name} | {v} | {t['wall']:.1f} / {t['cpu']:.1f} "
                f"| {lit['wall'] / t['wall']:.2f}x / {lit['cpu'] / t['cpu']:.2f}x "
                f"| {error.item():.0e} |",
                flush=True,
            )
    print(f"\n{machine_load()}")


if __name__ == "__main__":
    main()
