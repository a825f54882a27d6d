"""The Python examples of the README and of the documentation pages run as written
(doctests)."""

from __future__ import annotations

import doctest
import os

import pytest
import torch

from conftest import REPO_ROOT, need_shared

PAGES = sorted(
    path.relative_to(REPO_ROOT).as_posix()
    for path in [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").rglob("*.md")]
    if ">>> " in path.read_text(encoding="utf-8") and "_build" not in path.parts
)
# pages whose examples name the published models (they restore with Converse-DnCNN)
NEEDS_WEIGHTS = {"README.md", "docs/restoring.md"}


def test_pages_with_examples_are_found():
    assert {"README.md", "docs/operator.md", "docs/restoring.md"} <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_examples(page, tmp_path, monkeypatch):
    if page in NEEDS_WEIGHTS:
        weights = os.environ.get("CONVERSENET_WEIGHTS") or str(need_shared("weights", "official"))
        monkeypatch.setenv("CONVERSENET_WEIGHTS", weights)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    text = (REPO_ROOT / page).read_text(encoding="utf-8")
    result = doctest.testfile(str(REPO_ROOT / page), module_relative=False, verbose=False)
    assert result.attempted == text.count("\n>>> ")  # every example was parsed and run
    if result.failed:
        pytest.fail(f"{result.failed} doctest example(s) of {page} failed (see output above)")
