"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

from torch import nn

from conversenet import functional as CF
from conversenet.layers import Converse2D


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
