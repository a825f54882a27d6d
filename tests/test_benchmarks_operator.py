"""The operator benchmarks' helpers: the checkerboard measure, the switch that turns the
spatial path off, and the checkerboard study end to end on a tiny budget."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from conversenet.operator import Converse2D, layers, spatial_path_applies

from conftest import REPO_ROOT, need_shared

BENCHMARKS = REPO_ROOT / "benchmarks"


def _load(name: str):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # the scripts import their sibling `common`
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cb = _load("bench_checkerboard")
brc = _load("bench_reverse_conv")


def test_periodic_share_of_a_checkerboard_and_of_smooth_images():
    ii, jj = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    board = ((ii + jj) % 2).double()
    assert cb.periodic_share(board) == pytest.approx(1.0)
    assert cb.periodic_share(board + 3.0, relative_to_dc=True) == pytest.approx(
        (0.5 * 256) ** 2 / (3.5 * 256) ** 2
    )
    smooth = torch.sin(2 * torch.pi * ii / 16).double()
    assert cb.periodic_share(smooth) < 1e-12  # (float32 sine: rounding only)
    nearest = torch.rand(8, 8).repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert cb.periodic_share(nearest) < 1e-12  # the 2×2 box zeroes those frequencies


def test_fft_path_only_switches_the_spatial_path_off_and_back(monkeypatch):
    """Inside the switch a k = 2, s = 2 layer builds a spectral filter; outside it does not."""
    calls = []
    original = layers.converse_filter

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(layers, "converse_filter", counting)
    layer = Converse2D(2, 2, 2, scale=2).eval()
    x = torch.rand(1, 2, 6, 6)
    with torch.no_grad():
        spatial = layer(x)
        assert calls == []
        with brc.fft_path_only():
            fft = layer(x)
        assert len(calls) == 1
        layer.clear_filter_cache()
        layer(x)
    assert len(calls) == 1 and spatial_path_applies((2, 2), 2)
    torch.testing.assert_close(fft, spatial, rtol=0, atol=1e-6)


def test_checkerboard_study_end_to_end(tmp_path, capsys, monkeypatch):
    train, test = need_shared("data", "Train400"), need_shared("data", "Set5")
    figure, table = tmp_path / "figure.png", tmp_path / "table.md"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "bench_checkerboard.py",
            "--train",
            str(train),
            "--test",
            str(test),
            "--steps",
            "2",
            "--patches",
            "16",
            "--channels",
            "4",
            "--figure",
            str(figure),
            "--table",
            str(table),
        ],
    )
    cb.main()
    text = table.read_text()
    for name in cb.METHODS:
        assert f"| {name} |" in text
    assert "(HR ground truth)" in text and figure.stat().st_size < 300 * 1024
