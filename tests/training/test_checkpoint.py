"""Checkpoints: atomic writes, integrity checks, keep-last, RNG states, safetensors export."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from conversenet.models import create_model
from conversenet.training.checkpoint import (
    CheckpointError,
    CheckpointManager,
    atomic_write,
    export_weights,
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)


def _state(step: int) -> dict:
    return {
        "model": {"w": torch.full((3,), float(step))},
        "optimizer": {},
        "scheduler": {},
        "step": step,
        "rng": get_rng_state(),
        "config": {"task": "denoise"},
    }


def test_save_and_load_round_trip_leaves_no_temporary_files(tmp_path):
    path = save_checkpoint(_state(4), tmp_path / "checkpoint_00000004.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_00000004.pt",
        "checkpoint_00000004.pt.sha256",
    ]
    state = load_checkpoint(path)
    assert state["step"] == 4 and torch.equal(state["model"]["w"], torch.full((3,), 4.0))


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def failing(f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_corrupted_truncated_and_foreign_files_are_detected(tmp_path):
    path = save_checkpoint(_state(1), tmp_path / "checkpoint_00000001.pt")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)
    # without a sidecar a truncated file still fails to load
    path2 = save_checkpoint(_state(2), tmp_path / "checkpoint_00000002.pt")
    (tmp_path / "checkpoint_00000002.pt.sha256").unlink()
    path2.write_bytes(path2.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path2)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(1)}, other)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_manager_keeps_the_last_n_and_falls_back_past_damage(tmp_path):
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2, 3):
        manager.save(_state(step), step)
    assert [p.name for p in manager.checkpoints()] == [
        "checkpoint_00000002.pt",
        "checkpoint_00000003.pt",
    ]
    assert not (tmp_path / "checkpoint_00000001.pt.sha256").exists()
    path, state = manager.latest_valid()
    assert state["step"] == 3
    newest = manager.path_for(3)
    newest.write_bytes(newest.read_bytes()[:-50])  # truncated
    path, state = manager.latest_valid()
    assert path == manager.path_for(2) and state["step"] == 2
    manager.path_for(2).write_bytes(b"")
    assert manager.latest_valid() is None
    assert CheckpointManager(tmp_path / "none").latest_valid() is None


def test_rng_states_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = save_checkpoint(_state(0), tmp_path / "checkpoint_00000000.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_exported_weights_load_with_create_model(tmp_path):
    model = create_model("converse_dncnn", num_blocks=2, num_features=8)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = export_weights(model.state_dict(), tmp_path / "model.safetensors", {"step": 5})
    again = create_model("converse_dncnn", num_blocks=2, num_features=8, weights=path)
    for (k1, v1), (k2, v2) in zip(
        model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert k1 == k2 and torch.equal(v1, v2)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        assert f.metadata()["step"] == "5"
