"""Shared pytest fixtures and helpers for the conversenet test suite.

The development data (official weights, test images, blur kernels, golden
outputs) lives in a ``shared`` folder next to the repository root, i.e.
``../shared`` seen from the project root. It is never copied into the
repository; tests that need it skip with a reason when it is absent, so the
suite still runs on a bare checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


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
