"""The README's Python examples run as written (doctests)."""

from __future__ import annotations

import doctest
import os

import pytest
import torch

from conftest import REPO_ROOT, need_shared


def test_readme_python_example(tmp_path, monkeypatch):
    weights = os.environ.get("CONVERSENET_WEIGHTS") or str(need_shared("weights", "official"))
    monkeypatch.setenv("CONVERSENET_WEIGHTS", weights)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    result = doctest.testfile(str(REPO_ROOT / "README.md"), module_relative=False, verbose=False)
    assert result.attempted >= 30  # the operator section and the restoring example
    if result.failed:
        pytest.fail(f"{result.failed} README doctest example(s) failed (see output above)")
