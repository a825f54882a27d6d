"""Runs that span sittings and machines: small checkpoints, warm restarts, the learning
curve in metrics.csv."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch

from conversenet.training import Trainer, load_checkpoint
from conversenet.training.checkpoint import CheckpointManager, save_checkpoint, small_state
from conversenet.training.config import config_from_dict
from conversenet.training.distributed import DistContext

from conftest import tiny_training_config

WARM = 4  # optim.warm_restart_steps of these tests


def config(training_images: Path, **train) -> dict:
    return tiny_training_config(
        training_images,
        optim={"warm_restart_steps": WARM},
        validation={"dir": str(training_images), "every": 3, "max_images": 1},
        train={"checkpoint_every": 3, **train},
    )


def run(cfg: dict, out: Path, **kwargs) -> dict:
    return Trainer(config_from_dict(cfg), out, ctx=DistContext(), **kwargs).run()


@pytest.fixture(scope="module")
def six_steps(training_images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "six"
    run(config(training_images, total_steps=6), out)
    return out


def test_the_small_checkpoint_holds_half_precision_weights_and_no_moments(six_steps):
    full = load_checkpoint(six_steps / "checkpoint_00000006.pt")
    small = load_checkpoint(six_steps / "last_small.pt")
    assert small["small"] == "weights" and small["step"] == 6
    for key in ("model", "ema"):
        for name, value in full[key].items():
            assert small[key][name].dtype == torch.float16
            assert torch.equal(small[key][name], value.half()), f"{key}.{name}"
    assert small["optimizer"]["state"] == {}
    assert small["scheduler"] == full["scheduler"] and small["history"] == full["history"]
    n_params = sum(v.numel() for v in full["model"].values())
    full_size = (six_steps / "checkpoint_00000006.pt").stat().st_size
    small_size = (six_steps / "last_small.pt").stat().st_size
    # 16 bytes per parameter in the full one (fp32 model, EMA and two moments), 4 here
    assert full_size - small_size >= 12 * n_params


def test_a_run_continues_from_the_small_checkpoint_alone(training_images, six_steps, tmp_path):
    """As in a fresh clone that has only the committed last_small.pt."""
    out = tmp_path / "clone"
    out.mkdir()
    for name in ("last_small.pt", "last_small.pt.sha256"):
        shutil.copy(six_steps / name, out / name)
    before = load_checkpoint(out / "last_small.pt")["model"]
    summary = run(config(training_images, total_steps=7), out)
    assert summary["step"] == 7 and not summary["interrupted"]
    log = (out / "train.log").read_text()
    assert "resumed from" in log and "last_small.pt at step 6" in log
    assert "warm restart" in log and f"ramps up over {WARM} steps" in log
    # the first step of the ramp moves no weight by more than lr / WARM (Adam moves each
    # weight by at most about the learning rate: |m̂ / (sqrt(v̂) + eps)| <= 1)
    lr = 2e-3 * 0.5  # optim.lr, halved at milestone 4
    after = load_checkpoint(out / "checkpoint_00000007.pt")["model"]
    moved = max((after[k] - before[k].float()).abs().max().item() for k in before)
    assert 0 < moved <= lr / WARM * (1 + 1e-4)


def test_without_the_ramp_the_first_step_moves_by_the_full_rate(
    training_images, six_steps, tmp_path
):
    """The control of the test above: the ramp, not the data, bounds that first step."""
    out = tmp_path / "clone"
    out.mkdir()
    shutil.copy(six_steps / "last_small.pt", out / "last_small.pt")
    before = load_checkpoint(out / "last_small.pt")["model"]
    cfg = config(training_images, total_steps=7)
    cfg["optim"]["warm_restart_steps"] = 0
    run(cfg, out)
    after = load_checkpoint(out / "checkpoint_00000007.pt")["model"]
    moved = max((after[k] - before[k].float()).abs().max().item() for k in before)
    assert moved > 0.5 * 2e-3 * 0.5


def test_moments_kept_in_bfloat16_resume_without_a_warm_restart(training_images, tmp_path):
    out = tmp_path / "moments"
    run(config(training_images, total_steps=6, small_checkpoint="weights+moments"), out)
    full = load_checkpoint(out / "checkpoint_00000006.pt")
    small = load_checkpoint(out / "last_small.pt")
    for idx, entry in full["optimizer"]["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(small["optimizer"]["state"][idx][name], entry[name].bfloat16())
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(out / "last_small.pt", clone / "last_small.pt")
    summary = run(config(training_images, total_steps=8), clone)
    assert summary["step"] == 8
    assert "warm restart" not in (clone / "train.log").read_text()


def test_full_checkpoints_win_where_they_reach_as_far(tmp_path):
    def state(step: int) -> dict:
        return {
            "model": {"w": torch.full((2,), float(step))},
            "optimizer": {"state": {}, "param_groups": []},
            "scheduler": {},
            "step": step,
            "rng": {},
            "config": {},
        }

    manager = CheckpointManager(tmp_path, keep_last=3, small="weights")
    manager.save(state(4), 4)
    assert manager.latest_valid()[0].name == "checkpoint_00000004.pt"  # same step
    save_checkpoint(small_state(state(9)), manager.small_path)
    assert manager.latest_valid()[0].name == "last_small.pt"  # further on
    manager.path_for(9).write_bytes(b"damaged")
    assert manager.latest_valid()[0].name == "checkpoint_00000004.pt"  # exact resume first


def test_metrics_csv_is_the_learning_curve(six_steps):
    with open(six_steps / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [3, 6]
    hours = [float(r["train_wall_hours"]) for r in rows]
    assert 0 < hours[0] < hours[1] < 1
    assert all(0 < float(r["train_cpu_hours"]) < 1 for r in rows)
    history = load_checkpoint(six_steps / "checkpoint_00000006.pt")["history"]["validation"]
    assert [float(r["psnr"]) for r in rows] == pytest.approx([v["psnr"] for v in history])


def test_resumed_training_hours_continue_from_the_checkpoint(training_images, six_steps, tmp_path):
    out = tmp_path / "more"
    shutil.copytree(six_steps, out)
    run(config(training_images, total_steps=9), out)
    with open(out / "metrics.csv", newline="") as f:
        hours = [float(r["train_wall_hours"]) for r in csv.DictReader(f)]
    assert len(hours) == 3 and hours[0] < hours[1] < hours[2]
