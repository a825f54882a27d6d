"""Shared pytest fixtures and helpers for the conversenet test suite.

The development data (official weights, test images, blur kernels, golden
outputs) lives in a ``shared`` folder next to the repository root, i.e.
``../shared`` seen from the project root. It is never copied into the
repository; tests that need it skip with a reason when it is absent, so the
suite still runs on a bare checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

# Test tensors are small: with several intra-op threads, every FFT, matmul or pad waits on
# a thread hand-off, which on a busy machine costs far more than the work itself (a tiny
# Converse2D call measured 130 ms with 2 threads and 1 ms with 1). OMP_NUM_THREADS, when
# set, still decides.
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)


def need_shared(*parts: str) -> Path:
    """Return ``SHARED / parts``; skip the calling test when that path does not exist.

    Example: ``path = need_shared("reference", "converse2d_cases.npz")``.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path} does not exist")
    return path


# Alias kept for readability at call sites that prefer the verb form.
requires_shared = need_shared


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` data folder; skips the test when it is absent."""
    return need_shared()
