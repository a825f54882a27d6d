"""reuse_freed_memory: freed tensors are recycled instead of page-faulted in again."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conversenet import runtime

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
    reason="mallopt tuning is for glibc on Linux",
)

# A ConverseBlock forward at a size whose intermediates (about 40 MiB each) are above
# glibc's largest default mmap threshold (32 MiB), run six times; report the fewest minor
# page faults of runs 3-6 (the steady state: now and then one allocation does not fit the
# hole a freed one left, which costs one tensor's pages in that run). Fresh mmap'ed memory
# faults once per 4 KiB page: about 1e5 faults per run. (A loop over one tensor size is not
# a fair probe: aligned allocations of exactly the size just freed need a little more than
# the hole they left.)
PROBE = """
import resource, sys, torch
from conversenet.models.blocks import ConverseBlock
from conversenet.runtime import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "tune" else None
block = ConverseBlock(32, kernel_size=5, padding=4, padding_mode="circular").eval()
x = torch.rand(1, 32, 384, 384)
faults = []
with torch.inference_mode():
    for _ in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block(x)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(applied, min(faults[2:]))
"""
# One 32 x 384 x 384 float32 tensor is about 4,600 pages. Untuned runs fault in 19k-47k
# pages depending on the machine and its load; tuned ones fewer than 2,000. The bound sits
# between: at least two tensors' worth of fresh pages in every steady-state run.
UNTUNED_MIN_FAULTS = 10_000


def _probe(mode: str, **env: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], int(out[1])


def test_freed_tensor_memory_is_reused():
    applied, faults = _probe("tune")
    assert applied == "True"
    assert faults < 2000, f"{faults} page faults: freed tensors were not reused"


def test_without_tuning_every_large_tensor_faults_in_again():
    # the baseline the tuning removes; if glibc stops doing this, the tuning is moot
    _, faults = _probe("plain")
    assert faults > UNTUNED_MIN_FAULTS


def test_opt_out_variable_leaves_malloc_alone():
    applied, faults = _probe("tune", **{runtime.OPT_OUT_VARIABLE: "0"})
    assert applied == "False"
    assert faults > UNTUNED_MIN_FAULTS


def test_is_idempotent():
    first = runtime.reuse_freed_memory()
    assert runtime.reuse_freed_memory() is first
