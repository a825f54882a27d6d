"""The README's Python example runs as written (a doctest)."""

from __future__ import annotations

import doctest
import os

import pytest

from conftest import REPO_ROOT, need_shared


def test_readme_python_example(tmp_path, monkeypatch):
    weights = os.environ.get("CONVERSENET_WEIGHTS") or str(need_shared("weights", "official"))
    monkeypatch.setenv("CONVERSENET_WEIGHTS", weights)
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(REPO_ROOT / "README.md"), module_relative=False, verbose=False)
    assert result.attempted >= 8
    if result.failed:
        pytest.fail(f"{result.failed} README doctest example(s) failed (see output above)")
