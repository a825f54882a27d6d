"""Data-parallel training for real: 2 CPU processes under gloo versus one process.

With the same global batch, the two ranks draw disjoint halves of the single process's
batches and DistributedDataParallel averages their gradients, so the weights must match
the single-process run to float tolerance.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import yaml
from safetensors.torch import load_file

from conversenet.training import load_checkpoint, train
from conversenet.training.config import config_from_dict
from conversenet.training.trainer import WEIGHTS_NAME, _Clock

from conftest import REPO_ROOT, tiny_training_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(training_images: Path) -> dict:
    return tiny_training_config(
        training_images,
        degradation={"sigma": None, "sigma_range": [0, 50]},
        optim={"lr": 1e-3, "milestones": [3], "grad_clip": 1.0},
        train={"total_steps": 5, "checkpoint_every": 100},
    )


@pytest.fixture(scope="module")
def single_process(training_images, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ddp") / "single"
    train(config_from_dict(_config(training_images)), out)
    return load_file(out / WEIGHTS_NAME)


def _rank_main(rank: int, world: int, port: int, cfg: dict, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    train(config_from_dict(cfg), out)


def _rank_main_late_clock(rank: int, world: int, port: int, cfg: dict, out: str) -> None:
    """:func:`_rank_main` where only rank 1's clock says the time limit has passed."""
    _Clock.sitting_minutes = lambda self: 0.0 if rank == 0 else 1e9
    _rank_main(rank, world, port, cfg, out)


def _run_two_ranks(target, cfg: dict, out: Path) -> list[int | None]:
    ctx = mp.get_context("fork")
    port = _free_port()
    procs = [ctx.Process(target=target, args=(r, 2, port, cfg, str(out))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    codes = [p.exitcode for p in procs]  # None: still running (the ranks disagree and wait)
    for p in procs:
        if p.is_alive():
            p.kill()
    return codes


def _assert_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_two_gloo_processes_match_one_process(training_images, single_process, tmp_path):
    out = tmp_path / "ddp"
    assert _run_two_ranks(_rank_main, _config(training_images), out) == [0, 0]
    # only rank 0 writes: one log, one set of checkpoints, one weights file
    assert (out / WEIGHTS_NAME).is_file() and len(list(out.glob("checkpoint_*.pt"))) == 1
    log = (out / "train.log").read_text()
    assert "on 2 process(es)" in log and log.count("step 5/5 loss") == 1
    _assert_close(load_file(out / WEIGHTS_NAME), single_process)


def test_a_time_limit_seen_by_one_rank_stops_both_after_the_same_step(training_images, tmp_path):
    cfg = _config(training_images)
    cfg["train"]["time_limit_minutes"] = 60.0  # only rank 1's clock says it is past
    out = tmp_path / "limited"
    assert _run_two_ranks(_rank_main_late_clock, cfg, out) == [0, 0]
    assert load_checkpoint(sorted(out.glob("checkpoint_*.pt"))[-1])["step"] == 1
    assert (out / WEIGHTS_NAME).is_file()


@pytest.mark.slow
def test_torchrun_cli_two_processes_match_one_process(training_images, single_process, tmp_path):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(_config(training_images)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(REPO_ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "torchrun"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "conversenet.cli",
        "train",
        str(cfg_path),
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_close(load_file(out / WEIGHTS_NAME), single_process)
