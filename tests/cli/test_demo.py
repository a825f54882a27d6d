"""Tests of ``conversenet demo``: the shipped sample, the degradations, missing weights, a run."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from conversenet.cli.demo import PANEL, comparison_image, make_cases, summary_table
from conversenet.io import load_image
from conversenet.metrics import psnr
from conversenet.samples import demo_kernel, sample_image


def test_sample_image_ships_with_its_licence():
    assets = resources.files("conversenet") / "assets"
    image = sample_image()
    assert image.shape == (192, 192, 3) and image.dtype == np.uint8
    assert image.std() > 20  # a real photo, not a flat placeholder
    assert (assets / "chelsea.png").stat().st_size < 100_000
    source = (assets / "SOURCE.md").read_text()
    assert "CC0" in source and "Stefan van der Walt" in source


def test_demo_kernel():
    k = demo_kernel()
    assert k.shape == (7, 7)
    assert k.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(k, k[::-1, ::-1])  # point-symmetric
    np.testing.assert_allclose(k, k.T)  # symmetric about the main diagonal ...
    assert k[1, 1] > 5 * k[1, 5]  # ... and elongated along it


def test_cases_have_the_documented_degradations():
    hr = sample_image()
    cases = {c.task: c for c in make_cases(hr, ("denoise", "sr", "deblur"))}
    den, sr, deb = cases["denoise"], cases["sr"], cases["deblur"]
    assert den.reference.shape == den.degraded.shape == (192, 192, 3)  # colour
    noise = den.degraded.astype(float) - den.reference
    assert 20 < noise.std() < 26  # sigma 25, a little less after clipping to 0..255
    gray = make_cases(hr.mean(axis=2).round().astype(np.uint8), ("denoise",))[0]
    assert gray.reference.shape == gray.degraded.shape == (192, 192)
    assert sr.degraded.shape == (48, 48, 3) and sr.reference.shape == (192, 192, 3)
    assert sr.degraded_view.shape == (192, 192, 3)
    assert deb.degraded.shape == (192, 192, 3)
    np.testing.assert_array_equal(deb.kernel, demo_kernel())
    assert 22 < psnr(deb.degraded, deb.reference) < 40  # visibly blurred, not destroyed


def test_comparison_image_layout():
    panel = np.zeros((192, 192, 3), np.uint8)
    small = np.zeros((48, 48), np.uint8)
    img = comparison_image([("a", [(panel, "x"), (small, "y")]), ("b", [(panel, "z")])])
    assert img.size[0] > 2 * 192 and img.size[1] > 2 * 192


def test_captions_stay_within_their_panels():
    """The compact models' long names: each caption wraps within its panel, none runs into
    the next one (the gaps between panels stay white)."""
    panel = np.full((192, 192, 3), 128, np.uint8)
    labels = ["noisy, sigma 25: 20.25 dB", "converse_dncnn_compact_colour: 29.98 dB", "reference"]
    image = np.asarray(comparison_image([("t", [(panel, label) for label in labels])]))
    margin = 8
    for i in range(1, len(labels)):
        gap = image[:, i * (PANEL + margin) : i * (PANEL + margin) + margin]
        assert (gap == 255).all(), f"a caption crosses the gap before panel {i}"
    assert (image[:, -margin:] == 255).all()
    two_lines = np.asarray(comparison_image([("t", [(panel, "reference")])])).shape[0]
    assert image.shape[0] > two_lines  # the wrapped caption's extra lines have room


def test_summary_table_columns_line_up():
    rows = [
        ("denoise", "converse_dncnn_compact_colour", 20.25, 29.98, 3.1),
        ("sr", "converse_srresnet_compact", 27.73, 29.21, 1.0),
        ("deblur", "conversenet_compact", 29.45, 30.81, 12.5),
    ]
    lines = summary_table(rows).splitlines()
    ends = {len(line) for line in lines}
    assert len(ends) == 1, lines  # every column right-aligned under its heading
    degraded = lines[0].index("degraded") + len("degraded")
    for line, row in zip(lines[1:], rows, strict=True):
        assert line[:degraded].split()[-1] == f"{row[2]:.2f}"


def test_demo_runs_offline_with_the_embedded_models(tmp_path):
    """No official weights, an empty cache, downloads refused: every task runs with the
    model shipped in the package, says so, and the demo exits 0."""
    env = {
        **os.environ,
        "CONVERSENET_WEIGHTS": str(tmp_path / "empty"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HOME": str(tmp_path / "home"),
    }
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "conversenet.cli", "demo", "-o", str(out), "--no-download", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = {s.split()[0]: s.split() for s in result.stdout.splitlines() if s.split()}
    offline = {
        "denoise": "conv_unet_colour",
        "sr": "converse_srresnet_compact",
        "deblur": "wiener",  # no offline blind model: the known kernel, non-blind
    }
    for task, model in offline.items():
        assert rows[task][1] == model  # the summary names the model that ran
        assert float(rows[task][3]) > float(rows[task][2])  # it beats the degraded input
        restored = load_image(out / f"{task}_restored.png")
        assert restored.shape == load_image(out / f"{task}_reference.png").shape
    for filename in ("converse_srresnet.pth",):
        assert filename in result.stderr  # the notes say which official weights are missing
    assert "gives wiener the known blur kernel" in result.stderr
    assert load_image(out / "comparison.png").shape[0] > 3 * 192


def test_demo_runs_with_the_official_weights(tmp_path):
    folder = os.environ.get("CONVERSENET_WEIGHTS")
    if not folder or not (Path(folder) / "converse_srresnet.pth").is_file():
        pytest.skip("official weights not available (set CONVERSENET_WEIGHTS)")
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "conversenet.cli", "demo", "-o", str(out), "--tasks", "sr"]
    result = subprocess.run(
        [*command, "--no-download", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "converse_srresnet" in result.stdout and "dB" not in result.stderr
    line = next(s for s in result.stdout.splitlines() if s.startswith("sr "))
    before, after = (float(v) for v in line.split()[2:4])
    assert after > before  # the model beats bicubic interpolation
    restored = load_image(out / "sr_restored.png")
    reference = load_image(out / "sr_reference.png")
    assert restored.shape == reference.shape == (192, 192, 3)
    assert psnr(restored, reference) == pytest.approx(after, abs=0.01)
    assert load_image(out / "comparison.png").shape[1] > 3 * 192


@pytest.mark.slow
def test_full_demo_with_the_official_weights(tmp_path):
    folder = os.environ.get("CONVERSENET_WEIGHTS")
    if not folder or not (Path(folder) / "conversenet.pth").is_file():
        pytest.skip("official weights not available (set CONVERSENET_WEIGHTS)")
    result = subprocess.run(
        [sys.executable, "-m", "conversenet.cli", "demo", "--no-download", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr
    rows = [
        s.split()
        for s in result.stdout.splitlines()
        if s.split()[:1] in (["denoise"], ["sr"], ["deblur"])
    ]
    assert len(rows) == 3
    for row in rows:
        assert float(row[3]) > float(row[2])
    assert (tmp_path / "conversenet-demo" / "comparison.png").is_file()
