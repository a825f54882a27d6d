"""Checkpoints that are never half-written, and the exported weights.

:func:`save_checkpoint` writes to a temporary file in the destination folder, flushes and
``fsync``s it, renames it over the destination with :func:`os.replace` (atomic on POSIX
and Windows) and then writes a ``.sha256`` sidecar the same way. :func:`load_checkpoint`
checks the digest before unpickling (``weights_only=True``), so a truncated or corrupted
file is reported as :class:`CheckpointError`. :class:`CheckpointManager` keeps the last
``keep_last`` checkpoints of a run folder and finds the newest valid one, falling back to
older ones when the newest is damaged.

Beside them it can keep ``last_small.pt``, the newest state made small enough to commit to
a repository (:func:`small_state`: weights and EMA in float16, Adam's moments in bfloat16
or dropped): a run continues from it on another machine, bit for bit up to that rounding
(and, without the moments, with the warm restart of
:mod:`conversenet.training.optimisation`). The repository keeps such snapshots in
``checkpoints/<run>/`` (see its README).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

__all__ = [
    "CheckpointError",
    "CheckpointManager",
    "atomic_write",
    "export_weights",
    "get_rng_state",
    "load_checkpoint",
    "save_checkpoint",
    "set_rng_state",
    "small_state",
]

log = logging.getLogger("conversenet.training")

CHECKPOINT_PATTERN = re.compile(r"^checkpoint_(\d{8,})\.pt$")
REQUIRED_KEYS = ("model", "optimizer", "scheduler", "step", "rng", "config")
SMALL_NAME = "last_small.pt"
#: what a small checkpoint keeps: nothing (no file), the weights, or also Adam's moments
SMALL_CONTENTS = ("off", "weights", "weights+moments")


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, truncated, corrupted or incomplete."""


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import (os.umask can only be read by setting it)


def atomic_write(path: str | Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync, then rename it over
    ``path``; on any error the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; use the usual mode
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _step_of(path: Path) -> int:
    return int(CHECKPOINT_PATTERN.match(path.name).group(1))


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


# ---------------------------------------------------------------------------------------
# random number generator states (stored as tensors/plain data: loadable weights_only)
# ---------------------------------------------------------------------------------------
def get_rng_state() -> dict[str, Any]:
    """States of Python's, NumPy's (legacy global) and torch's generators (CPU and CUDA)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


# ---------------------------------------------------------------------------------------
# single files
# ---------------------------------------------------------------------------------------
def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Atomically write ``state`` with :func:`torch.save`, then its SHA-256 sidecar."""
    path = Path(path)
    atomic_write(path, lambda f: torch.save(state, f))
    digest = _sha256_file(path)
    atomic_write(_sidecar(path), lambda f: f.write(f"{digest}  {path.name}\n"), mode="w")
    return path


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint written by :func:`save_checkpoint`.

    The file's SHA-256 must match its sidecar when there is one; without a sidecar the
    file must at least unpickle. The result must hold the keys of a training checkpoint.

    Raises:
        CheckpointError: missing, corrupted, truncated or incomplete file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    sidecar = _sidecar(path)
    if sidecar.is_file():
        expected = sidecar.read_text().split()[0] if sidecar.read_text().strip() else ""
        actual = _sha256_file(path)
        if actual != expected:
            raise CheckpointError(
                f"{path} is corrupted: its SHA-256 is {actual}, the sidecar expects "
                f"{expected or '(empty sidecar)'}"
            )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, ...
        raise CheckpointError(f"{path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a checkpoint dictionary")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: not a training checkpoint")
    return state


def _half(tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Floating-point tensors in ``dtype``, unless that would overflow them."""
    out = {}
    for name, value in tensors.items():
        small = value.to(dtype) if value.is_floating_point() else value
        overflows = not torch.isfinite(small).all() and torch.isfinite(value).all()
        out[name] = value if overflows else small
    return out


def small_state(state: dict[str, Any], contents: str = "weights") -> dict[str, Any]:
    """A training state made small: the model and EMA weights in float16 and, with
    ``contents="weights+moments"``, Adam's moments in bfloat16 (float32's range), else
    none (the resumed run makes a warm restart). Everything else is kept as it is."""
    if contents not in SMALL_CONTENTS[1:]:
        raise ValueError(f"contents must be one of {SMALL_CONTENTS[1:]}, got {contents!r}")
    optimizer = state["optimizer"]
    moments = {}
    if contents == "weights+moments":
        moments = {i: _half(entry, torch.bfloat16) for i, entry in optimizer["state"].items()}
    ema = state.get("ema")
    return {
        **state,
        "model": _half(state["model"], torch.float16),
        "ema": _half(ema, torch.float16) if ema is not None else None,
        "optimizer": {"state": moments, "param_groups": optimizer["param_groups"]},
        "small": contents,
    }


def export_weights(
    state_dict: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a model ``state_dict`` as a safetensors file (atomically).

    The keys are kept as they are, so ``create_model(name, weights=path)`` loads it
    strictly. ``metadata`` values are stored as strings (non-strings as JSON).
    """
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    meta = {"format": "pt"}
    for key, value in (metadata or {}).items():
        meta[str(key)] = value if isinstance(value, str) else json.dumps(value)
    data = safetensors_bytes(tensors, metadata=meta)
    path = Path(path)
    atomic_write(path, lambda f: f.write(data))
    return path


# ---------------------------------------------------------------------------------------
# a run folder
# ---------------------------------------------------------------------------------------
class CheckpointManager:
    """The ``checkpoint_<step>.pt`` files of a run folder.

    Args:
        folder: the run folder (created on the first save).
        keep_last: how many checkpoints to keep; older ones are deleted after a save.
    """

    def __init__(self, folder: str | Path, keep_last: int = 3, small: str = "off") -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        if small not in SMALL_CONTENTS:
            raise ValueError(f"small must be one of {SMALL_CONTENTS}, got {small!r}")
        self.folder = Path(folder)
        self.keep_last = int(keep_last)
        self.small = small

    @property
    def small_path(self) -> Path:
        """``last_small.pt``: the newest state, small (see :func:`small_state`)."""
        return self.folder / SMALL_NAME

    def path_for(self, step: int) -> Path:
        return self.folder / f"checkpoint_{step:08d}.pt"

    def checkpoints(self) -> list[Path]:
        """Checkpoint files, oldest first (by step)."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if CHECKPOINT_PATTERN.match(p.name)]
        return sorted(found, key=_step_of)

    def files(self) -> list[Path]:
        """The checkpoints, then ``last_small.pt`` if there is one."""
        small = [self.small_path] if self.small_path.is_file() else []
        return self.checkpoints() + small

    def save(self, state: dict[str, Any], step: int) -> Path:
        """Write ``checkpoint_<step>.pt`` (and ``last_small.pt`` unless ``small`` is
        ``off``), then delete the checkpoints beyond ``keep_last``."""
        path = save_checkpoint(state, self.path_for(step))
        if self.small != "off":
            save_checkpoint(small_state(state, self.small), self.small_path)
        for old in self.checkpoints()[: -self.keep_last]:
            old.unlink(missing_ok=True)
            _sidecar(old).unlink(missing_ok=True)
        return path

    def latest_valid(self, map_location: Any = "cpu") -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint that loads and checks out, or ``None`` if there is none.

        Damaged checkpoints are skipped with a warning naming the problem. ``last_small.pt``
        is used when it is further on than every full checkpoint file, valid or not (in a
        fresh clone of a repository that commits it, or on a machine whose checkpoints
        are older): where a full checkpoint reaches as far, the run resumes exactly from
        full checkpoints.
        """
        found = None
        for path in reversed(self.checkpoints()):
            try:
                found = path, load_checkpoint(path, map_location)
                break
            except CheckpointError as exc:
                log.warning("skipping damaged checkpoint: %s", exc)
        if self.small_path.is_file():
            try:
                small = self.small_path, load_checkpoint(self.small_path, map_location)
            except CheckpointError as exc:
                log.warning("skipping damaged checkpoint: %s", exc)
            else:
                newest = max((_step_of(p) for p in self.checkpoints()), default=-1)
                if small[1]["step"] > newest:
                    found = small
        return found
