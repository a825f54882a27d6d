"""A `conversenet train` that cannot start says why and leaves the disk as it found it
(issue #20)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conversenet.cli import main
from conversenet.training import CheckpointError, Trainer
from conversenet.training.config import config_from_dict
from conversenet.training.distributed import DistContext

from conftest import tiny_training_config


def run(cfg: dict, out: Path, **kwargs) -> dict:
    return Trainer(config_from_dict(cfg), out, ctx=DistContext(), **kwargs).run()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def finished(training_images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "finished"
    run(tiny_training_config(training_images, train={"total_steps": 4}), out)
    return out


def test_a_missing_resume_checkpoint_writes_nothing(training_images, tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tiny_training_config(training_images)))
    out = tmp_path / "run2"
    code = main(["train", str(cfg), "--out", str(out), "--resume", str(tmp_path / "nothere.pt")])
    assert code == 1
    assert "checkpoint not found" in capsys.readouterr().err
    assert not out.exists()


def test_resume_without_a_checkpoint_writes_nothing(training_images, tmp_path):
    out = tmp_path / "empty"
    with pytest.raises(CheckpointError, match="no checkpoint"):
        run(tiny_training_config(training_images), out, resume="auto")
    assert not out.exists()


def test_a_damaged_run_folder_is_left_as_it_was(training_images, finished, tmp_path):
    out = tmp_path / "damaged"
    shutil.copytree(finished, out)
    for path in out.glob("*.pt"):
        path.write_bytes(b"damaged")
    before = snapshot(out)
    with pytest.raises(CheckpointError, match=r"every checkpoint in .* is damaged"):
        run(tiny_training_config(training_images, train={"total_steps": 8}), out)
    assert snapshot(out) == before


def test_a_folder_given_as_the_config_is_named_as_such(finished, tmp_path, capsys):
    assert main(["train", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"expected a YAML config file, got the folder {tmp_path}" in err
    assert "not found" not in err
    assert main(["train", str(finished)]) == 1  # a run folder: how to continue it
    assert f"pass {finished / 'config.yaml'} with --out {finished}" in capsys.readouterr().err
