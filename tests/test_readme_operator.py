"""README_OPERATOR_SECTION.md: its Python examples run as written (doctests)."""

from __future__ import annotations

import doctest

import pytest
import torch

from conftest import REPO_ROOT


def test_operator_section_examples():
    torch.manual_seed(0)
    result = doctest.testfile(
        str(REPO_ROOT / "README_OPERATOR_SECTION.md"), module_relative=False, verbose=False
    )
    assert result.attempted >= 20
    if result.failed:
        pytest.fail(f"{result.failed} example(s) of README_OPERATOR_SECTION.md failed (above)")
