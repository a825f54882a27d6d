"""The training loop: loss goes down, bitwise resume, damaged checkpoints, SIGINT, export."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conversenet.cli import main
from conversenet.models import create_model
from conversenet.training import (
    Trainer,
    build_loss,
    build_model,
    load_checkpoint,
    make_protocol,
    no_harm_penalty,
    validate,
)
from conversenet.training.config import config_from_dict
from conversenet.training.distributed import DistContext
from conversenet.training.optimisation import Optimisation
from conversenet.training.trainer import WEIGHTS_NAME, ModelEMA

from conftest import (
    REPO_ROOT,
    TINY_DNCNN,
    default_sigint,
    tiny_training_config,
    write_random_images,
)


class StopAt(Trainer):
    """A trainer whose process receives a real SIGINT (Ctrl-C) during step ``stop_at``."""

    stop_at = -1

    def train_step(self, batch):
        loss = super().train_step(batch)
        if self.step + 1 == self.stop_at:
            os.kill(os.getpid(), signal.SIGINT)
        return loss


def run(cfg: dict, out: Path, trainer_cls=Trainer, **kwargs) -> dict:
    return trainer_cls(config_from_dict(cfg), out, ctx=DistContext(), **kwargs).run()


def final_state(out: Path) -> dict:
    ckpts = sorted(out.glob("checkpoint_*.pt"))
    return load_checkpoint(ckpts[-1])


def assert_states_equal(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), f"{key}.{name} differs"
    opt_a, opt_b = a["optimizer"]["state"], b["optimizer"]["state"]
    for idx in opt_a:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(opt_a[idx][name], opt_b[idx][name])
    assert a["scheduler"] == b["scheduler"]


@pytest.fixture(scope="module")
def uninterrupted(training_images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "straight"
    summary = run(tiny_training_config(training_images), out)
    assert summary["step"] == 8 and not summary["interrupted"]
    return out


def test_training_lowers_the_loss(training_images, tmp_path):
    cfg = tiny_training_config(
        training_images,
        optim={"milestones": []},
        train={"total_steps": 20, "log_every": 5, "checkpoint_every": 100},
    )
    summary = run(cfg, tmp_path / "run")
    losses = [h["loss"] for h in summary["history"]["loss"]]
    assert len(losses) == 4
    assert all(b < a for a, b in itertools.pairwise(losses))
    assert losses[-1] < 0.5 * losses[0]


def test_run_folder_contents_and_exported_weights(uninterrupted):
    names = {p.name for p in uninterrupted.iterdir()}
    assert {"config.yaml", "train.log", WEIGHTS_NAME} <= names
    assert {"checkpoint_00000006.pt", "checkpoint_00000008.pt"} <= names
    assert not any(n.endswith(".tmp") for n in names)
    saved = yaml.safe_load((uninterrupted / "config.yaml").read_text())
    assert saved["model"]["options"] == TINY_DNCNN and saved["train"]["total_steps"] == 8
    model = create_model("converse_dncnn", weights=uninterrupted / WEIGHTS_NAME, **TINY_DNCNN)
    ema = final_state(uninterrupted)["ema"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, ema[name])  # EMA weights are exported
    log = (uninterrupted / "train.log").read_text()
    assert "step 8/8 loss" in log and "it/s" in log


def test_resume_is_bitwise_identical(training_images, uninterrupted, tmp_path):
    out = tmp_path / "resumed"
    StopAt.stop_at = 5  # mid-epoch: 12 patches per epoch, 3 batches
    first = run(tiny_training_config(training_images), out, StopAt)
    assert first["interrupted"] and first["step"] == 5
    assert load_checkpoint(out / "checkpoint_00000005.pt")["step"] == 5
    second = run(tiny_training_config(training_images), out)  # automatic resume from the run folder
    assert second["step"] == 8 and not second["interrupted"]
    assert_states_equal(final_state(out), final_state(uninterrupted))
    assert "resumed from" in (out / "train.log").read_text()


def test_resume_with_workers_and_explicit_path(training_images, uninterrupted, tmp_path):
    cfg = tiny_training_config(training_images, data={"num_workers": 2})
    out = tmp_path / "workers"
    StopAt.stop_at = 4
    run(cfg, out, StopAt)
    run(cfg, tmp_path / "elsewhere", resume=out / "checkpoint_00000004.pt")
    assert_states_equal(final_state(tmp_path / "elsewhere"), final_state(uninterrupted))


def test_corrupted_last_checkpoint_falls_back_to_the_previous(
    training_images, uninterrupted, tmp_path
):
    out = tmp_path / "damaged"
    StopAt.stop_at = 6
    run(tiny_training_config(training_images), out, StopAt)  # checkpoints at 3 and 6
    last = out / "checkpoint_00000006.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # truncated
    summary = run(tiny_training_config(training_images), out, resume="auto")
    assert summary["step"] == 8
    log = (out / "train.log").read_text()
    assert "skipping damaged checkpoint" in log and "checkpoint_00000003.pt at step 3" in log
    assert_states_equal(final_state(out), final_state(uninterrupted))


def test_resume_without_checkpoint_is_an_error(training_images, tmp_path):
    from conversenet.training import CheckpointError

    with pytest.raises(CheckpointError, match="no checkpoint"):
        run(tiny_training_config(training_images), tmp_path / "empty", resume="auto")


def test_validation_psnr_is_logged(training_images, tmp_path):
    cfg = tiny_training_config(
        training_images,
        validation={"dir": str(training_images), "every": 2, "max_images": 2},
        train={"total_steps": 4, "checkpoint_every": 100},
    )
    summary = run(cfg, tmp_path / "val")
    vals = summary["history"]["validation"]
    assert [v["step"] for v in vals] == [2, 4]
    assert all(np.isfinite(v["psnr"]) and v["images"] == 2 for v in vals)
    assert summary["validation"]["psnr"] == vals[-1]["psnr"]


class _Brighten(torch.nn.Module):
    def forward(self, x):
        return x + 0.1


def test_validation_reports_the_smallest_gain_over_the_input(training_images):
    protocol = make_protocol("denoise", sigma=25)
    assert validate(torch.nn.Identity(), training_images, protocol)["min_gain"] == 0
    assert validate(_Brighten(), training_images, protocol)["min_gain"] < -1


def test_losses_and_ema():
    a, b = torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0])
    assert build_loss("l1")(a, b).item() == pytest.approx(1.0)
    assert build_loss("l2")(a, b).item() == pytest.approx(2.0)
    assert build_loss("charbonnier", 1e-3)(a, b).item() == pytest.approx(
        (1e-3 + np.sqrt(4 + 1e-6)) / 2
    )
    with pytest.raises(ValueError):
        build_loss("huber")
    model = torch.nn.Linear(1, 1)
    ema = ModelEMA(model, 0.5)
    with torch.no_grad():
        model.weight.fill_(1.0)
        ema.module.weight.fill_(0.0)
    ema.update(model)
    assert ema.module.weight.item() == pytest.approx(0.5)


def test_no_harm_penalty_counts_the_db_each_sample_loses_to_its_input():
    target = torch.zeros(2, 1, 4, 4)
    degraded = torch.full_like(target, 0.1)
    pred = torch.stack([torch.full((1, 4, 4), 0.05), torch.full((1, 4, 4), 0.1 * 10**0.5)])
    pred.requires_grad_(True)
    penalty = no_harm_penalty(pred, target, degraded)  # sample 0 gains 6 dB, sample 1 loses 10
    assert penalty.item() == pytest.approx(10 / 2, rel=1e-5)
    penalty.backward()
    assert pred.grad[0].abs().max() == 0 and pred.grad[1].abs().min() > 0


def test_the_no_harm_weight_adds_the_penalty_to_the_training_loss(training_images):
    cfg = config_from_dict(
        tiny_training_config(training_images, optim={"no_harm_weight": 2.0, "ema_decay": 0})
    )
    optimisation = Optimisation(cfg, DistContext())
    torch.manual_seed(0)
    batch = {"target": torch.rand(2, 1, 16, 16)}
    batch["input"] = batch["target"] + 0.1 * torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        optimisation.model.train()
        pred = optimisation.model(batch["input"])
        l1 = torch.nn.functional.l1_loss(pred, batch["target"])
        expected = l1 + 2.0 * no_harm_penalty(pred, batch["target"], batch["input"])
    assert expected > l1  # the untrained network is worse than its input
    assert optimisation.train_step(batch).item() == pytest.approx(expected.item(), rel=1e-5)


def _free_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
def test_cli_sigint_saves_a_checkpoint_and_resume_finishes(training_images, tmp_path):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_training_config(training_images)))
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "conversenet.cli", "train", str(cfg_path), "--out", str(out)]
    cmd += ["--set", "train.total_steps=100000", "--set", "train.checkpoint_every=100000"]
    proc = subprocess.Popen(
        cmd, env=_free_env(), stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "step 2/" not in (
        (out / "train.log").read_text() if (out / "train.log").exists() else ""
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    ckpts = sorted(out.glob("checkpoint_*.pt"))
    assert len(ckpts) == 1
    stopped_at = load_checkpoint(ckpts[0])["step"]
    assert stopped_at >= 2
    done = subprocess.run(
        [*cmd[:7], "--resume", "--set", f"train.total_steps={stopped_at + 2}"],
        env=_free_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (out / WEIGHTS_NAME).is_file()
    assert load_checkpoint(sorted(out.glob("checkpoint_*.pt"))[-1])["step"] == stopped_at + 2


def test_cli_reports_config_errors(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("task: denoise\noptim: {lrr: 1}\n")
    assert main(["train", str(path), "--out", str(tmp_path / "o")]) == 1
    assert "did you mean 'lr'" in capsys.readouterr().err


def test_a_time_limit_ends_the_sitting_with_weights_and_resume_continues(
    training_images, uninterrupted, tmp_path
):
    cfg = tiny_training_config(training_images, train={"time_limit_minutes": 1e-9})
    out = tmp_path / "limited"
    first = run(cfg, out)
    assert first["time_limit_reached"] and not first["interrupted"]
    assert first["step"] == 1
    assert load_checkpoint(out / "checkpoint_00000001.pt")["step"] == 1
    assert (out / WEIGHTS_NAME).is_file()  # the weights so far
    assert "time limit of 1e-09 minutes reached at step 1" in (out / "train.log").read_text()
    second = run(tiny_training_config(training_images), out)
    assert second["step"] == 8 and not second["time_limit_reached"]
    assert_states_equal(final_state(out), final_state(uninterrupted))


def test_cli_time_limit_exits_0_and_refuses_a_negative_limit(training_images, tmp_path, capsys):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_training_config(training_images)))
    out = tmp_path / "cli"
    assert main(["train", str(cfg_path), "--out", str(out), "--time-limit", "-1"]) == 1
    assert "train.time_limit_minutes must be >= 0" in capsys.readouterr().err
    assert not out.exists()
    assert main(["train", str(cfg_path), "--out", str(out), "--time-limit", "1e-9"]) == 0
    assert load_checkpoint(sorted(out.glob("checkpoint_*.pt"))[-1])["step"] == 1
    assert (out / WEIGHTS_NAME).is_file()


@pytest.mark.parametrize(
    ("task", "name", "options", "degradation"),
    [
        (
            "sr",
            "converse_srresnet",
            {"num_blocks": 1, "num_features": 8, "upscale": 2},
            {"scale": 2},
        ),
        (
            "deblur",
            "conversenet",
            {"num_blocks": 1, "num_features": 8, "num_iterations": 1},
            {"sigma_range": [0, 2.55]},
        ),
        (
            "deblur_nonblind",
            "converse_usrnet",
            {"num_blocks": 1, "num_features": 8, "num_iterations": 1},
            {"sigma_range": [0, 2.55]},
        ),
    ],
)
def test_other_tasks_train_and_export(tmp_path, task, name, options, degradation):
    folder = tmp_path / "rgb"
    write_random_images(folder, 2, (32, 32, 3), seed=1)
    cfg = tiny_training_config(
        folder,
        task=task,
        model={"name": name, "options": options},
        data={"channels": 3, "batch_size": 2, "patch_size": 16, "repeat": 1},
        degradation={"sigma": None, **degradation},
        train={"total_steps": 2, "log_every": 1},
    )
    summary = run(cfg, tmp_path / "run")
    assert summary["step"] == 2 and np.isfinite(summary["loss"])
    create_model(name, weights=tmp_path / "run" / WEIGHTS_NAME, **options)


def test_tensorboard_scalars(training_images, tmp_path):
    pytest.importorskip("tensorboard")
    cfg = tiny_training_config(training_images, train={"total_steps": 2, "tensorboard": True})
    run(cfg, tmp_path / "tb")
    assert any((tmp_path / "tb" / "tensorboard").iterdir())


def test_a_model_that_does_not_fit_the_task_is_a_clear_error(tmp_path):
    folder = tmp_path / "rgb"
    write_random_images(folder, 1, (32, 32, 3), seed=1)
    cfg = tiny_training_config(
        folder,
        task="sr",
        model={"name": "converse_srresnet", "options": {"num_blocks": 1, "num_features": 8}},
        data={"channels": 3, "batch_size": 2, "patch_size": 16, "repeat": 2},
        degradation={"sigma": None, "scale": 2},
    )
    with pytest.raises(ValueError, match=r"degradation\.scale"):
        run(cfg, tmp_path / "run")


def test_resume_takes_the_schedule_from_the_config(training_images, tmp_path):
    out = tmp_path / "sched"
    cfg = tiny_training_config(
        training_images, optim={"milestones": [100]}, train={"total_steps": 4}
    )
    run(cfg, out)
    cfg = tiny_training_config(training_images, optim={"milestones": [6]}, train={"total_steps": 8})
    run(cfg, out)
    state = final_state(out)
    assert state["step"] == 8
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(2e-3 * 0.5)
    assert (
        "config changed since the checkpoint: optim.milestones" in (out / "train.log").read_text()
    )


def test_resume_takes_a_changed_learning_rate_from_the_config(training_images, tmp_path):
    out = tmp_path / "lr"
    cfg = tiny_training_config(training_images, optim={"milestones": [2]}, train={"total_steps": 4})
    run(cfg, out)  # lr 2e-3, halved at step 2
    cfg = tiny_training_config(
        training_images,
        optim={"lr": 5e-4, "milestones": [3, 6], "gamma": 0.1},
        train={"total_steps": 5},
    )
    run(cfg, out)  # a new base rate, one milestone already passed at the checkpoint's step 4
    state = final_state(out)
    assert state["step"] == 5
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(5e-4 * 0.1)
    assert "config changed since the checkpoint: optim.lr" in (out / "train.log").read_text()


def test_exported_weights_work_with_conversenet_eval(training_images, tmp_path):
    from conversenet.cli import main

    cfg = tiny_training_config(
        training_images,
        model={"name": "dncnn", "options": {}},
        data={"batch_size": 2, "patch_size": 16},
        train={"total_steps": 1},
    )
    run(cfg, tmp_path / "run")
    out = tmp_path / "eval"
    weights = str(tmp_path / "run" / WEIGHTS_NAME)
    args = ["eval", "--model", "dncnn", "--data", str(training_images), "--sigma", "25", "--quiet"]
    code = main([*args, "--weights", weights, "--out", str(out)])
    assert code == 0
    assert (out / "results.json").is_file()


def test_init_weights_starts_a_new_run_from_a_file_and_a_resume_ignores_it(
    training_images, uninterrupted, tmp_path
):
    start = tmp_path / "start.safetensors"
    start.write_bytes((uninterrupted / WEIGHTS_NAME).read_bytes())
    initial = create_model("converse_dncnn", weights=start, **TINY_DNCNN).state_dict()
    cfg = tiny_training_config(
        training_images,
        model={"init_weights": str(start)},
        optim={"lr": 1e-9, "ema_decay": 0.0},
        train={"total_steps": 2, "checkpoint_every": 1},
    )
    run(cfg, tmp_path / "tuned")
    first = load_checkpoint(tmp_path / "tuned" / "checkpoint_00000001.pt")["model"]
    for name, value in initial.items():
        torch.testing.assert_close(first[name], value, atol=1e-6, rtol=0, msg=name)
    random_start = create_model("converse_dncnn", **TINY_DNCNN).state_dict()
    assert any((random_start[k] - initial[k]).abs().max() > 1e-2 for k in initial)

    start.unlink()  # a resumed run continues from its checkpoint, not from init_weights
    cfg["train"]["total_steps"] = 3
    assert run(cfg, tmp_path / "tuned")["step"] == 3


def test_init_weights_that_is_not_a_file_is_refused_before_anything_is_written(
    training_images, tmp_path
):
    cfg = tiny_training_config(training_images, model={"init_weights": str(tmp_path / "no.pt")})
    with pytest.raises(ValueError, match=r"model.init_weights .*no.pt.*not a file"):
        run(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_init_weights_pretrained_loads_the_registered_weights(training_images, tmp_path):
    model = {"name": "converse_srresnet_compact", "options": {}, "init_weights": "pretrained"}
    cfg = config_from_dict(
        tiny_training_config(
            training_images,
            model=model,
            task="sr",
            degradation={"scale": 4, "sigma": None},
        )
    )
    tuned = build_model(cfg).state_dict()
    shipped = create_model("converse_srresnet_compact", pretrained=True).state_dict()
    assert all(torch.equal(tuned[k], shipped[k]) for k in shipped)
    untrained = build_model(cfg, initial_weights=False).state_dict()
    assert not all(torch.equal(untrained[k], shipped[k]) for k in shipped)
