"""Which checkpoint a run continues from, and what changed in the configuration since.

:func:`find_resume` reads the ``--resume`` request (nothing, ``auto``, a checkpoint file or
a run folder) and returns the checkpoint to continue from, or raises
:class:`~conversenet.training.checkpoint.CheckpointError` before anything is written.
:func:`log_config_changes` warns about every configuration value that differs from the
checkpoint's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, CheckpointManager, load_checkpoint
from .config import Config, config_from_dict, config_to_dict

__all__ = ["find_resume", "log_config_changes"]

log = logging.getLogger("conversenet.training")


def find_resume(
    resume: str | Path | None, manager: CheckpointManager, restart: bool = False
) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint (path, state) a run in ``manager.folder`` continues from.

    Args:
        resume: ``None`` (the run folder's newest valid checkpoint, if any), ``"auto"``
            (the same, but none is an error), or a checkpoint file or a run folder.
        manager: the checkpoints of the run folder.
        restart: accept a run folder whose checkpoints are all damaged (start afresh).

    Raises:
        CheckpointError: no checkpoint where one is asked for, a damaged file, or a run
            folder whose checkpoints are all damaged (without ``restart``).
    """
    folder = manager.folder
    if resume is None or resume == "auto":
        found = manager.latest_valid()
        if found is None and resume == "auto":
            if manager.files():
                raise CheckpointError(f"no valid checkpoint in {folder}")
            raise CheckpointError(f"--resume: no checkpoint in {folder}")
        if found is None and manager.files() and not restart:
            damaged = ", ".join(p.name for p in manager.files())
            raise CheckpointError(
                f"every checkpoint in {folder} is damaged ({damaged}): the run cannot "
                "resume, and starting afresh would overwrite them. Train into another "
                "--out folder, or pass --restart to start from step 0 here"
            )
        return found
    path = Path(resume)
    if path.is_dir():
        found = CheckpointManager(path).latest_valid()
        if found is None:
            raise CheckpointError(f"no valid checkpoint in {path}")
        return found
    return path, load_checkpoint(path)


def log_config_changes(saved: dict[str, Any], cfg: Config) -> None:
    """Warn about each value of ``cfg`` that differs from ``saved`` (a checkpoint's)."""
    try:
        old = config_to_dict(config_from_dict(saved))
    except ValueError:
        log.warning("the checkpoint's config does not validate any more; continuing")
        return
    for section, values in config_to_dict(cfg).items():
        if not isinstance(values, dict):
            if old.get(section) != values:
                log.warning(
                    "config changed since the checkpoint: %s %r -> %r",
                    section,
                    old.get(section),
                    values,
                )
            continue
        for key, value in values.items():
            before = old.get(section, {}).get(key)
            if before != value:
                log.warning(
                    "config changed since the checkpoint: %s.%s %r -> %r",
                    section,
                    key,
                    before,
                    value,
                )
