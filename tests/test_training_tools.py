"""tools/model_table.py (the FLOP count it prints, checked against counts by hand),
tools/learning_curve.py (the extrapolation, on a curve of known form), tools/gpu_sprint.sh
(rehearsed on the CPU with a time limit of a few steps), tools/grow_blocks.py (the
deepened model computes what the trained one did), tools/average_weights.py (the mean
of the runs' weights) and tools/deblur_displacement.py (the shifts it finds)."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from conversenet.data.protocol import blur
from conversenet.models import create_model
from conversenet.training.checkpoint import export_weights
from conversenet.weights import saved_model_options

from conftest import REPO_ROOT, write_random_images


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table():
    return load_tool("model_table")


class ConvThenFFT(torch.nn.Module):
    """A 3x3 convolution (3 -> 8 channels), then a real 2-D FFT and its inverse."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return torch.fft.irfft2(torch.fft.rfft2(y), s=y.shape[-2:])


def test_flops_per_pixel_counts_convolutions_and_ffts(table, monkeypatch):
    monkeypatch.setattr(table, "model_input", lambda name, side: torch.rand(1, 3, side, side))
    side = 32
    total, fft = table.flops_per_pixel(ConvThenFFT(), "any", side=side)
    conv = 2 * 9 * 3 * 8  # multiply-adds per output pixel, times 2
    transforms = 2 * 2.5 * 8 * math.log2(side * side)  # r2c and c2r of 8 planes
    assert fft == pytest.approx(transforms, rel=1e-6)
    assert total == pytest.approx(conv + transforms, rel=1e-6)


@pytest.mark.slow
def test_the_unet_costs_less_per_pixel_than_the_compact_colour_model(table):
    counts = {
        name: table.flops_per_pixel(create_model(name), name, side=64)[0]
        for name in ("converse_unet_colour", "converse_dncnn_compact_colour")
    }
    # 173k vs 261k FLOPs per pixel at 256x256
    assert counts["converse_unet_colour"] < 0.75 * counts["converse_dncnn_compact_colour"]


def test_learning_curve_extrapolates_a_log_linear_curve():
    curve = load_tool("learning_curve")
    # psnr = 20 + 1.5 ln(steps), 2e-4 CPU hours and 1e-3 wall hours per step
    rows = [
        {
            "step": s,
            "psnr": 20 + 1.5 * math.log(s),
            "train_cpu_hours": 2e-4 * s,
            "train_wall_hours": 1e-3 * s,
        }
        for s in (500, 1000, 2000, 4000)
    ]
    text = curve.extrapolate(rows, target=35.0, from_step=1000)
    steps = math.exp(15 / 1.5)  # 22,026
    assert "fit over steps 1000-4000: psnr = 20.000 + 1.500 ln(steps)" in text
    assert f"about {steps:,.0f} steps = {steps * 2e-4:,.1f} CPU hours" in text
    assert "fewer than 2 points" in curve.extrapolate(rows, 35.0, from_step=3000)


SPRINT_FOLDERS = ("csun_train70", "csun_train70_half", "csun_test10_crop256", "Set5")


def sprint(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEVICE": "cpu", "BATCH": "1", "RUNS": str(tmp_path / "runs")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = ["bash", str(REPO_ROOT / "tools" / "gpu_sprint.sh"), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_gpu_sprint_trains_packs_and_resumes_on_the_cpu(tmp_path):
    data = tmp_path / "data"
    for folder in (*SPRINT_FOLDERS, "csun_pseudo_x4"):  # 128² patches: the SR stage's
        write_random_images(data / folder, count=2, shape=(132, 132, 3))
    for folder in ("Train400", "Set12"):
        write_random_images(data / folder, count=2, shape=(48, 48))
    (data / "kernels").mkdir()
    out = tmp_path / "out"
    for _ in range(2):  # the second sitting resumes the first
        done = sprint(tmp_path, "1e-6", str(out), str(data), "sr_compact")
        assert done.returncode == 0, done.stderr
    log = (tmp_path / "runs" / "sr_compact" / "train.log").read_text()
    # the first sitting starts from the snapshot in checkpoints/, the second from the first
    stops = [int(s) for s in re.findall(r"time limit of 1e-06 minutes reached at step (\d+)", log)]
    assert len(stops) == 2 and stops[1] == stops[0] + 1 and "resumed from" in log
    config = (tmp_path / "runs" / "sr_compact" / "config.yaml").read_text()
    assert "csun_pseudo_x4" in config  # the teacher's folder is used when DATA has it
    assert "milestones: []" in config  # a constant rate, not the snapshot's decayed one
    with tarfile.open(out / "sprint.tar.gz") as archive:
        names = set(archive.getnames())
    assert {"sr_compact/last_small.pt", "sr_compact/model.safetensors"} <= names


def test_gpu_sprint_refuses_missing_data_and_unknown_runs_before_training(tmp_path):
    missing = sprint(tmp_path, "1", str(tmp_path / "out"), str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "nowhere/csun_train70 is missing" in missing.stderr
    unknown = sprint(tmp_path, "1", str(tmp_path / "out"), str(tmp_path), "sr_compact", "bogus")
    assert unknown.returncode == 2 and "unknown run bogus" in unknown.stderr
    assert not (tmp_path / "runs").exists()


def test_eval_blind_deblur_scores_a_trained_weights_file_like_the_registered_weights(tmp_path):
    evaluate = load_tool("eval_blind_deblur")
    paths = write_random_images(tmp_path / "photos", count=2, shape=(40, 48, 3))
    kernel = torch.ones(3, 3).double().numpy() / 9
    registered = evaluate.scores("conversenet_compact", paths, kernel)
    weights = create_model("conversenet_compact", pretrained=True).state_dict()
    trained_file = tmp_path / "trained.safetensors"
    save_file(weights, str(trained_file))
    trained = evaluate.scores("conversenet_compact", paths, kernel, trained_file)
    assert [r["psnr"] for r in trained] == [r["psnr"] for r in registered]
    summary = evaluate.summarise(registered, None)
    gains = [r["psnr"] - r["input_psnr"] for r in registered]
    assert summary["min_gain"] == pytest.approx(min(gains))
    assert summary["worse"] == sum(g < 0 for g in gains)


def test_deblur_displacement_finds_the_shift_that_undoes_a_displacement(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tools"))
    tool = load_tool("deblur_displacement")
    truth = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    moved = np.roll(truth, (1, -2), (0, 1))
    assert tool.best_shift(moved, truth, reach=2) == (float("inf"), -1, 2)
    value, dy, dx = tool.best_shift(moved, truth, reach=1)  # out of reach: not found
    assert math.isfinite(value) and (dy, dx) != (-1, 2)


def test_deblur_displacement_placement_undoes_the_displacement_of_the_output(monkeypatch):
    """Given the kernel (the blind estimate patched to return the true one), re-blurring a
    displaced output and registering it on the blurred image finds the undoing shift."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "tools"))
    tool = load_tool("deblur_displacement")
    kernel = np.zeros((7, 7))
    kernel[1, 1:6], kernel[1:6, 1] = [6, 5, 4, 3, 2], [6, 5, 4, 3, 2]  # support-centred
    kernel /= kernel.sum()
    monkeypatch.setattr(
        tool.BlindDeconvolution, "estimate", lambda self, image: torch.from_numpy(kernel)
    )
    truth = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    blurred = blur(truth, kernel).round().astype(np.uint8)
    restored = np.roll(truth, (-1, 2), (0, 1))  # the model's output, displaced
    undo = tool.placement_shift(restored, blurred, reach=2)
    assert undo == (1, -2)
    assert np.array_equal(np.roll(restored, undo, (0, 1)), truth)
    monkeypatch.setattr(tool.BlindDeconvolution, "estimate", lambda self, image: None)
    assert tool.placement_shift(restored, blurred, reach=2) == (0, 0)


def grow_blocks(model: torch.nn.Module, tmp_path, blocks: int):
    """Save ``model``'s weights and run tools/grow_blocks.py on them, to ``blocks`` blocks;
    returns the finished process and the output path."""
    weights, out = tmp_path / "trained.safetensors", tmp_path / "grown.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    tool = str(REPO_ROOT / "tools" / "grow_blocks.py")
    args = ["--model", "converse_srresnet_compact", "--weights", str(weights)]
    args += ["--blocks", str(blocks), "--out", str(out)]
    return subprocess.run([sys.executable, tool, *args], capture_output=True, text=True), out


def test_grow_blocks_keeps_the_output_and_the_trained_blocks_in_order(tmp_path):
    grow = load_tool("grow_blocks")
    assert grow.trained_positions(6, 16) == [0, 2, 5, 8, 10, 13]
    torch.manual_seed(1)
    trained = create_model("converse_srresnet_compact", num_blocks=3)
    for p in trained.parameters():  # every parameter away from its initial value
        p.data.add_(0.05 * torch.randn_like(p))
    run, out = grow_blocks(trained, tmp_path, 7)
    assert run.returncode == 0, run.stderr
    grown = create_model("converse_srresnet_compact", num_blocks=7, weights=out)
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(grown.eval()(x), trained.eval()(x), rtol=0, atol=1e-5)
    for old, new in enumerate(grow.trained_positions(3, 7)):
        assert torch.equal(
            grown.conv_body[new].conv1[3].weight, trained.conv_body[old].conv1[3].weight
        )
    new_blocks = set(range(7)) - set(grow.trained_positions(3, 7))
    for i in new_blocks:
        assert not grown.conv_body[i].conv2[-1].weight.any()
        assert grown.conv_body[i].conv1[1].weight.any()  # only the branch ends are zero
    # a trained model keeps its metadata: the weights say how deep the model is
    assert saved_model_options(out) == ("converse_srresnet_compact", {"num_blocks": 7})


def test_grow_blocks_refuses_fewer_blocks_than_trained(tmp_path):
    model = create_model("converse_srresnet_compact", num_blocks=3)
    run, out = grow_blocks(model, tmp_path, 2)
    assert run.returncode != 0
    assert "at least the trained depth 3, got 2" in run.stderr
    assert not out.exists()


SR_MODEL = "converse_srresnet_compact"


def test_average_weights_is_the_mean_and_keeps_the_model(tmp_path):
    paths = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        model = create_model(SR_MODEL, num_blocks=2)
        paths.append(tmp_path / f"run{seed}.safetensors")
        export_weights(
            model.state_dict(), paths[-1], {"model": SR_MODEL, "options": {"num_blocks": 2}}
        )
    out = tmp_path / "soup.safetensors"
    tool = str(REPO_ROOT / "tools" / "average_weights.py")
    run = subprocess.run(
        [sys.executable, tool, *map(str, paths), "--out", str(out)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    soup = create_model(SR_MODEL, num_blocks=2, weights=out).state_dict()
    runs = [create_model(SR_MODEL, num_blocks=2, weights=p).state_dict() for p in paths]
    for key, value in soup.items():
        torch.testing.assert_close(value, sum(r[key] for r in runs) / 3, rtol=0, atol=1e-7)
    assert saved_model_options(out) == (SR_MODEL, {"num_blocks": 2})


def test_average_weights_refuses_different_models_and_writes_nothing(tmp_path):
    a, b, out = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "out.safetensors"
    for path, blocks in ((a, 2), (b, 3)):
        model = create_model(SR_MODEL, num_blocks=blocks)
        export_weights(
            model.state_dict(), path, {"model": SR_MODEL, "options": {"num_blocks": blocks}}
        )
    tool = str(REPO_ROOT / "tools" / "average_weights.py")
    run = subprocess.run(
        [sys.executable, tool, str(a), str(b), "--out", str(out)], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert (
        "{'num_blocks': 3}), expected ('converse_srresnet_compact', {'num_blocks': 2})"
        in run.stderr
    )
    assert not out.exists()
