"""Converse2D operator benchmark: the project's operator against the paper's literal algorithm.

Three float32, batch-1 cases on the CPU:

* ``inference s=1``: C=128, 256x256, kernel 7, padding 6, circular;
* ``inference s=2``: C=64, 128x128, kernel 2, padding 2, replicate;
* ``training s=1``: C=64, 96x96, kernel 5, padding 4, circular, forward + backward
  (gradients w.r.t. the input, the kernels and the bias).

For inference the project's operator is timed twice: as a ``Converse2D`` layer in eval
mode under ``torch.no_grad()`` with its spectral-filter cache warm (the steady state of a
network applied to images of one size), and as the functional ``converse2d``, which
rebuilds the filter on every call. The baseline is ``converse2d_literal``.

Time: after ``--warmup`` calls, the variants of a case run in turn ``--repeats`` times
(interleaved, so that a change in the machine's load hits them alike); the table gives
the median wall-clock time and the median CPU time of the process. On a machine shared
with other jobs the CPU time is the steadier figure; the speed-ups are ratios of medians.

``--threads`` defaults to 1: on a small machine shared with other jobs, extra intra-op
threads mostly wait for one another (the many small operations of the filter suffer most),
so single-threaded figures are the reproducible ones.

The last column checks that the variants compute the right thing: the largest difference
of each float32 output from the same case computed in float64, relative to the largest
value. (The literal algorithm divides by λ, so in float32 it is the less accurate one.)

Memory: every variant also runs once more (warm-up included) in a fresh Python process,
which reports how far its peak resident set size (Linux ``VmHWM``, reset after setup)
rose above its resident size after building the inputs and the layer. That is the extra
memory the call needs at its peak, as the operating system saw it, allocator slack
included.

    python benchmarks/bench_converse2d.py --repeats 7 --threads 1
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from conversenet import Converse2D
from conversenet import functional as CF


@dataclass(frozen=True)
class Case:
    name: str
    channels: int
    size: int
    kernel_size: int
    padding: int
    padding_mode: str
    scale: int
    training: bool
    target: float  # required speed-up over the literal algorithm


CASES = (
    Case("inference s=1", 128, 256, 7, 6, "circular", 1, False, 8.0),
    Case("inference s=2", 64, 128, 2, 2, "replicate", 2, False, 5.0),
    Case("training s=1", 64, 96, 5, 4, "circular", 1, True, 6.0),
)
INFERENCE_VARIANTS = ("literal", "cached", "uncached")
TRAINING_VARIANTS = ("literal", "ours")


def variants(case: Case) -> tuple[str, ...]:
    return TRAINING_VARIANTS if case.training else INFERENCE_VARIANTS


def _setup(case: Case, requires_grad: bool):
    torch.manual_seed(0)
    c, n = case.channels, case.size
    layer = Converse2D(c, c, case.kernel_size, case.scale, case.padding, case.padding_mode)
    with torch.no_grad():  # a trained-looking regulariser instead of the zero init
        layer.bias.uniform_(-2.0, 2.0)
    x = torch.rand(1, c, n, n, requires_grad=requires_grad)
    args = (case.scale, case.padding, case.padding_mode, layer.eps)
    return layer, x, args


def build(case: Case, variant: str) -> Callable[[], torch.Tensor]:
    """Inputs, layer and a zero-argument callable running one call of ``variant``."""
    layer, x, args = _setup(case, requires_grad=case.training)

    if case.training:
        layer.train()

        def step() -> torch.Tensor:
            x.grad = layer.weight.grad = layer.bias.grad = None
            if variant == "literal":
                out = CF.converse2d_literal(x, layer.weight, layer.bias, *args)
            else:
                out = layer(x)
            out.square().mean().backward()
            return out.detach()

        return step

    layer.eval()

    def infer() -> torch.Tensor:
        with torch.no_grad():
            if variant == "literal":
                return CF.converse2d_literal(x, layer.weight, layer.bias, *args)
            if variant == "uncached":
                return CF.converse2d(x, layer.weight, layer.bias, *args)
            return layer(x)

    return infer


def float64_reference(case: Case) -> torch.Tensor:
    """The case's output computed in float64 (the accuracy yardstick)."""
    layer, x, args = _setup(case, requires_grad=False)
    with torch.no_grad():
        return CF.converse2d(x.double(), layer.weight.double(), layer.bias.double(), *args)


def cpu_seconds() -> float:
    return time.process_time()


def time_case(case: Case, repeats: int, warmup: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU milliseconds of every variant, repeats interleaved, and the
    relative error of its output against the float64 result."""
    calls = {v: build(case, v) for v in variants(case)}
    outputs = {}
    for v, fn in calls.items():
        for _ in range(warmup):
            outputs[v] = fn()
    reference = float64_reference(case)
    wall: dict[str, list[float]] = {v: [] for v in calls}
    cpu: dict[str, list[float]] = {v: [] for v in calls}
    for _ in range(repeats):
        for v, fn in calls.items():
            w0, c0 = time.perf_counter(), cpu_seconds()
            fn()
            wall[v].append(1e3 * (time.perf_counter() - w0))
            cpu[v].append(1e3 * (cpu_seconds() - c0))
    return {
        v: {
            "wall": statistics.median(wall[v]),
            "cpu": statistics.median(cpu[v]),
            "error": ((outputs[v].double() - reference).abs().max() / reference.abs().max()).item(),
        }
        for v in calls
    }


def _status_mib(field: str) -> float | None:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status in MiB (None off Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak_rss() -> None:
    # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass


def memory_child(case_index: int, variant: str, warmup: int, threads: int) -> None:
    """Body of the fresh process: print how far the peak RSS rose above the baseline.

    ``ru_maxrss`` is no use here: Linux carries the parent's peak over ``fork`` and
    ``exec``, so the child reads the peak of its own address space (``VmHWM``).
    """
    torch.set_num_threads(threads)
    fn = build(CASES[case_index], variant)
    before = _status_mib("VmRSS")
    _reset_peak_rss()
    for _ in range(warmup + 1):
        fn()
    peak = _status_mib("VmHWM")
    if before is None or peak is None:  # not Linux: fall back on the process peak
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak = before
    print(json.dumps({"peak_mib": peak - before}))


def measure_memory(case_index: int, variant: str, warmup: int, threads: int) -> float:
    cmd = [sys.executable, __file__, "--memory-child", f"{case_index}:{variant}"]
    cmd += ["--warmup", str(warmup), "--threads", str(threads)]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per variant")
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="untimed calls first (>= 1; a layer keeps its filter from the 2nd)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--cases", default="all", help="comma-separated case numbers (1-3)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.warmup < 1 or args.repeats < 1:
        parser.error("--warmup and --repeats must be >= 1")

    if args.memory_child:
        index, variant = args.memory_child.split(":")
        memory_child(int(index), variant, args.warmup, args.threads)
        return

    torch.set_num_threads(args.threads)
    chosen = (
        range(len(CASES)) if args.cases == "all" else [int(i) - 1 for i in args.cases.split(",")]
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{args.repeats} repeats after {args.warmup} warm-up call(s), float32, batch 1\n"
    )
    header = (
        "| case | ours | literal ms (wall / cpu) | ours ms (wall / cpu) "
        "| speed-up (wall / cpu) | target | peak MiB literal / ours | rel. error literal / ours |"
    )
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for i in chosen:
        case = CASES[i]
        times = time_case(case, args.repeats, args.warmup)
        memory = {}
        if not args.no_memory:
            memory = {v: measure_memory(i, v, args.warmup, args.threads) for v in times}
        lit = times["literal"]
        for v in variants(case)[1:]:
            ours = times[v]
            label = {"cached": "layer, filter cached", "uncached": "functional", "ours": "layer"}[v]
            mem = f"{memory['literal']:.0f} / {memory[v]:.0f}" if memory else "-"
            print(
                f"| {case.name} | {label} "
                f"| {lit['wall']:.1f} / {lit['cpu']:.1f} | {ours['wall']:.1f} / {ours['cpu']:.1f} "
                f"| {lit['wall'] / ours['wall']:.2f}x / {lit['cpu'] / ours['cpu']:.2f}x "
                f"| {case.target:g}x | {mem} | {lit['error']:.0e} / {ours['error']:.0e} |"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
