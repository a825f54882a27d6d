"""Converse2D operator benchmark: the project's operator against the paper's literal algorithm.

Three float32, batch-1 cases on the CPU (``benchmarks/cases.py``):

* ``inference s=1``: C=128, 256x256, kernel 7, padding 6, circular;
* ``inference s=2``: C=64, 128x128, kernel 2, padding 2, replicate;
* ``training s=1``: C=64, 96x96, kernel 5, padding 4, circular, forward + backward
  (gradients w.r.t. the input, the kernels and the bias).

For inference the project's operator is timed twice: as a ``Converse2D`` layer in eval
mode under ``torch.no_grad()`` with its spectral-filter cache warm (the steady state of a
network applied to images of one size), and as the functional ``converse2d``, which
rebuilds the filter on every call. The baseline is ``converse2d_literal``.

Time: the variants of a case run interleaved (``benchmarks/harness.py``); the table gives
the median wall-clock time and the median CPU time of the process. On a machine shared
with other jobs the CPU time is the steadier figure; the speed-ups are ratios of medians.
``--threads`` defaults to 1: on a small machine shared with other jobs, extra intra-op
threads mostly wait for one another, so single-threaded figures are the reproducible ones.

The last column checks that the variants compute the right thing: the largest difference
of each float32 output (training: of the input gradient) from the same case computed in
float64, relative to the largest value. (The literal algorithm divides by λ, so in
float32 it is the less accurate one.)

Memory: every variant also runs once more (warm-up included) in a fresh Python process,
which reports how far its peak resident set size rose above its resident size after
building the inputs and the layer: the extra memory the call needs at its peak, as the
operating system saw it, allocator slack included.

    python -m benchmarks.bench_converse2d --repeats 5
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import torch

from benchmarks import cases, harness

LABELS = {"ours": "layer", "functional": "functional"}  # of the rows (vs "literal")


def variants(case: cases.OperatorCase) -> tuple[str, ...]:
    return ("literal", "ours") if case.training else ("literal", "ours", "functional")


def case_list(quick: bool) -> tuple[cases.OperatorCase, ...]:
    full = cases.CONVERSE2D_CASES
    return tuple(c.shrunk() for c in full) if quick else full


def build(case: cases.OperatorCase, variant: str) -> Callable[[], torch.Tensor]:
    """One call of ``variant`` on the case's inputs (built for it alone)."""
    layer, x = cases.converse2d_inputs(case)
    return cases.converse2d_calls(case, layer, x, backward=case.training)[variant]


def memory_child(case: int, variant: str, warmup: int, threads: int, quick: bool) -> dict:
    """In a fresh process: the peak RSS rise of ``warmup + 1`` calls of the variant."""
    torch.set_num_threads(threads)
    fn = build(case_list(quick)[case], variant)

    def calls() -> None:
        for _ in range(warmup + 1):
            fn()

    return {"peak_mib": harness.peak_rise_mib(calls)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=(5, 1), warmup=(2, 1))
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--cases", default="all", help="comma-separated case numbers (1-3)")
    args = parser.parse_args(argv)
    try:
        chosen = harness.choose(range(len(cases.CONVERSE2D_CASES)), args.cases)
    except ValueError as exc:
        parser.error(str(exc))
    results = harness.Results(args.benchmark)
    details = f"{args.repeats} repeats after {args.warmup} warm-up call(s), float32, batch 1"
    print(harness.run_header(details) + "\n")
    headers = (
        "case", "ours", "literal ms (wall / cpu)", "ours ms (wall / cpu)",
        "speed-up (wall / cpu)", "target", "peak MiB literal / ours", "rel. error literal / ours",
    )  # fmt: skip
    print(harness.markdown_table(headers, []), end="")
    for index in chosen:
        case = case_list(args.quick)[index]
        calls = {v: build(case, v) for v in variants(case)}
        times = harness.interleave(calls, args.repeats, args.warmup)
        inputs = cases.converse2d_inputs(case)
        reference = cases.float64_reference(case, *inputs, backward=case.training)
        memory = {}
        if not args.no_memory:
            job = dict(case=index, warmup=args.warmup, threads=args.threads, quick=args.quick)
            found = harness.in_fresh_processes(memory_child, [{**job, "variant": v} for v in calls])
            memory = {v: m["peak_mib"] for v, m in zip(calls, found, strict=True)}
        lit = times["literal"]
        errors = {v: cases.relative_error(t.result, reference) for v, t in times.items()}
        for v, t in times.items():
            results.add(
                case.name, v, size=case.size, timing=t, peak_mib=memory.get(v), baseline=lit,
                rel_error=errors[v], target=case.target,
            )  # fmt: skip
        for v in variants(case)[1:]:
            mem = f"{harness.mib(memory['literal'])} / {harness.mib(memory[v])}" if memory else "-"
            label = "layer, filter cached" if v == "ours" and not case.training else LABELS[v]
            row = (
                case.name, label, harness.ms_cell(lit), harness.ms_cell(times[v]),
                harness.speedup_cell(lit, times[v]), f"{case.target:g}x", mem,
                f"{errors['literal']:.0e} / {errors[v]:.0e}",
            )  # fmt: skip
            print(harness.markdown_row(row), flush=True)
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
