"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
import resource
import statistics
import time
from collections.abc import Callable

from torch import nn

from conversenet import Converse2D
from conversenet import functional as CF


def use_literal_operator(model: nn.Module) -> nn.Module:
    """Make every Converse2D of ``model`` run the paper's literal algorithm instead."""
    for layer in model.modules():
        if isinstance(layer, Converse2D):

            def forward(x, layer=layer):
                return CF.converse2d_literal(
                    x,
                    layer.weight,
                    layer.bias,
                    layer.scale,
                    layer.padding,
                    layer.padding_mode,
                    layer.eps,
                )

            layer.forward = forward
    return model


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def interleaved_times(
    calls: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, dict[str, float]]:
    """Median wall and CPU milliseconds of each call, the calls run in turn ``repeats``
    times after ``warmup`` untimed rounds (a change in the machine's load hits them alike).

    Returns ``{name: {"wall": ms, "cpu": ms}}``; CPU time is that of the whole process.
    """
    for _ in range(warmup):
        for fn in calls.values():
            fn()
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(1e3 * (time.perf_counter() - w0))
            cpu[name].append(1e3 * (time.process_time() - c0))
    return {
        name: {"wall": statistics.median(wall[name]), "cpu": statistics.median(cpu[name])}
        for name in calls
    }


def machine_load() -> str:
    """The 1/5/15-minute load averages and the number of CPUs, for the report."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"
