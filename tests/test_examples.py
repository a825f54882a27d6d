"""Every script of examples/ runs with its default arguments and achieves what it says.

Each example is a complete script with ``main(argv) -> dict``; the test runs it as a user
would (default arguments, in an empty working folder, no network) and checks its outcome.
A new example needs an entry in ``OUTCOMES``.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable

import pytest
import torch

from conftest import REPO_ROOT

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.py"))
# CPU seconds an example may take with its default arguments: "well under a minute" on an
# idle machine; the margin absorbs a shared, loaded one
CPU_BUDGET_S = 120


def _restore_folder(result: dict) -> None:
    assert result["restored"] == 3
    assert min(result["gains_db"]) > 5  # σ 25 noise: every photo gains well over 5 dB


def _converse_in_your_model(result: dict) -> None:
    assert result["last_loss"] < 0.9 * result["first_loss"]
    assert result["psnr"] > result["psnr_nearest"] + 1  # beats nearest upscaling
    assert all(lam > 0 for lam in result["lambda"])


def _train_compact_model(result: dict) -> None:
    losses = result["losses"]
    assert not result["interrupted"] and result["step"] == 120
    assert sum(losses[-3:]) < 0.9 * sum(losses[:3])  # the loss went down
    assert result["psnr_restored"] > result["psnr_noisy"] + 2  # the new weights denoise


def _export_onnx(result: dict) -> None:
    assert result["max_abs_difference"] < 1e-4  # onnxruntime computes what PyTorch does
    assert result["psnr_restored"] > result["psnr_noisy"] + 5


def _evaluate_test_set(result: dict) -> None:
    assert len(result["images"]) == 4
    assert result["mean"]["psnr"] > result["mean"]["input_psnr"] + 5
    assert 0 < result["mean"]["ssim"] <= 1


OUTCOMES: dict[str, Callable[[dict], None]] = {
    "restore_folder": _restore_folder,
    "converse_in_your_model": _converse_in_your_model,
    "train_compact_model": _train_compact_model,
    "export_onnx": _export_onnx,
    "evaluate_test_set": _evaluate_test_set,
}
NEEDS = {"export_onnx": "onnxruntime"}


def test_every_example_is_checked():
    assert len(EXAMPLES) >= 4
    assert {path.stem for path in EXAMPLES} == set(OUTCOMES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_with_default_arguments(path, tmp_path, monkeypatch):
    if path.stem in NEEDS:
        pytest.importorskip(NEEDS[path.stem], reason=f"{path.name} needs the `onnx` extra")
    monkeypatch.chdir(tmp_path)  # the examples write their outputs into the working folder
    # nothing is downloaded: only weights on disk or shipped in the package
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    start = time.process_time()
    try:
        result = module.main([])
    finally:
        torch.set_num_threads(threads)
    cpu_seconds = time.process_time() - start
    OUTCOMES[path.stem](result)
    assert cpu_seconds < CPU_BUDGET_S, f"{path.name} took {cpu_seconds:.0f} s of CPU time"
