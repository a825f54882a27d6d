"""The training loop: steps, logging, validation and checkpoints on a schedule.

One :class:`Trainer` runs one configuration in one run folder::

    run/
      config.yaml              the resolved configuration
      train.log                the text log (rank 0)
      metrics.csv              validation PSNR against training hours (the learning curve)
      checkpoint_<step>.pt     the last ``train.keep_last`` checkpoints (+ .sha256 sidecars)
      last_small.pt            the newest state, small enough to commit (train.small_checkpoint)
      model.safetensors        the final weights (EMA weights when EMA is on)
      tensorboard/             scalars, when tensorboard is installed

A run folder that already holds checkpoints is resumed from its newest valid checkpoint.
Training is step based; the data seen at step ``s`` is a function of ``(seed, s)`` only
(see :mod:`conversenet.training.datasets`), and a checkpoint stores the model, the EMA,
the optimiser, the scheduler, the AMP scaler, the step and every random generator, so on
CPU a resumed run reproduces the uninterrupted one bit for bit. SIGINT (Ctrl-C) and
SIGTERM finish the current step, write a checkpoint and stop; ``train.time_limit_minutes``
ends a sitting the same way after validating and exporting the weights so far. A run that
cannot start (a bad ``--resume``) writes nothing.

The parts: :mod:`~conversenet.training.optimisation` (the model and one optimiser step),
:mod:`~conversenet.training.resume` (which checkpoint to continue from),
:mod:`~conversenet.training.run_log` (log, progress, metrics),
:mod:`~conversenet.training.signals` (stopping cleanly).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from .checkpoint import CheckpointManager, export_weights, get_rng_state, set_rng_state
from .config import Config, config_to_dict, save_config
from .datasets import PatchDataset, ShardedSampler, worker_init_fn
from .distributed import (
    DistContext,
    all_reduce_flag,
    barrier,
    cleanup_distributed,
    init_distributed,
)
from .optimisation import ModelEMA, Optimisation, build_loss, build_model
from .resume import find_resume, log_config_changes
from .run_log import METRICS_NAME, Progress, RunLog, write_metrics
from .signals import StopRequest
from .validation import RunValidation

__all__ = ["ModelEMA", "Trainer", "build_loss", "build_model", "train"]

log = logging.getLogger("conversenet.training")

WEIGHTS_NAME = "model.safetensors"


def _make_loader(dataset: PatchDataset, cfg: Config, ctx: DistContext):
    """The sampler (sharded, resumable mid-epoch), the loader and its generator."""
    sampler = ShardedSampler(
        dataset, cfg.data.batch_size, ctx.world_size, ctx.rank, seed=cfg.train.seed
    )
    generator = torch.Generator()
    generator.manual_seed(cfg.train.seed * 1000 + ctx.rank)
    workers = cfg.data.num_workers
    loader = DataLoader(
        dataset,
        batch_size=sampler.local_batch,
        sampler=sampler,
        num_workers=workers,
        pin_memory=ctx.device.type == "cuda",
        worker_init_fn=worker_init_fn,
        generator=generator,
        persistent_workers=workers > 0,
    )
    return sampler, loader, generator


class _Clock:
    """Training time over every sitting, in hours: wall-clock and this process's CPU time
    (all threads); it runs from :meth:`start` on, added to the earlier sittings'."""

    def __init__(self, wall_hours: float = 0.0, cpu_hours: float = 0.0) -> None:
        self.before = {"train_wall_hours": wall_hours, "train_cpu_hours": cpu_hours}
        self.start()

    def start(self) -> None:
        self.start_wall, self.start_cpu = time.perf_counter(), time.process_time()

    def sitting_minutes(self) -> float:
        """Wall-clock minutes since :meth:`start` (this sitting only)."""
        return (time.perf_counter() - self.start_wall) / 60

    def read(self) -> dict[str, float]:
        return {
            "train_wall_hours": self.before["train_wall_hours"]
            + (time.perf_counter() - self.start_wall) / 3600,
            "train_cpu_hours": self.before["train_cpu_hours"]
            + (time.process_time() - self.start_cpu) / 3600,
        }


class Trainer:
    """Train ``cfg`` in ``out_dir`` (see the module docstring).

    Args:
        cfg: a validated :class:`~conversenet.training.config.Config`.
        out_dir: the run folder.
        resume: ``None`` (resume automatically if the folder holds checkpoints), ``"auto"``
            (same, but it is an error if there is none), or a checkpoint file (or a folder,
            whose newest valid checkpoint is used).
        ctx: the data-parallel context; by default from :func:`init_distributed`.
        restart: start from step 0 in a folder whose checkpoints are all damaged (they
            are replaced as the new run saves); without it such a folder is refused.
    """

    def __init__(
        self,
        cfg: Config,
        out_dir: str | Path,
        resume: str | Path | None = None,
        ctx: DistContext | None = None,
        restart: bool = False,
    ) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.resume = resume
        self.restart = bool(restart)
        self.ctx = ctx if ctx is not None else init_distributed(cfg.train.device)
        self.step = 0
        self.history: dict[str, list[dict[str, float]]] = {"loss": [], "validation": []}
        self.clock = _Clock()
        t = cfg.train
        self.manager = CheckpointManager(self.out_dir, t.keep_last, t.small_checkpoint)
        self.validation = RunValidation(cfg) if cfg.validation.dir is not None else None

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly."""
        return {
            **self.optimisation.state_dict(),
            "step": self.step,
            "rng": get_rng_state(),
            "loader_generator": self.loader_generator.get_state(),
            "config": config_to_dict(self.cfg),
            "history": self.history,
            "clock": self.clock.read(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimisation.load_state_dict(state, str(self.out_dir))
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        if state.get("loader_generator") is not None:
            self.loader_generator.set_state(state["loader_generator"])
        saved = state.get("history") or {}
        if isinstance(saved, list):  # older checkpoints kept only the validation results
            saved = {"validation": saved}
        self.history = {k: list(saved.get(k, [])) for k in ("loss", "validation")}
        clock = state.get("clock") or {}
        self.clock = _Clock(clock.get("train_wall_hours", 0.0), clock.get("train_cpu_hours", 0.0))

    # -- the parts of a step ------------------------------------------------------------
    def train_step(self, batch: dict[str, Tensor]) -> Tensor:
        """One optimiser step on a batch; returns the (detached) loss."""
        return self.optimisation.train_step(batch)

    def eval_model(self) -> nn.Module:
        """The weights to validate and export: the EMA when it is on, else the model."""
        return self.optimisation.eval_model()

    def run_validation(self) -> dict[str, float] | None:
        """Validate the weights, add the result to the history and metrics.csv (rank 0)."""
        if self.validation is None or not self.ctx.is_main:
            return None
        result = self.validation(self.eval_model(), self.step)
        self.history["validation"].append({"step": self.step, **self.clock.read(), **result})
        write_metrics(self.out_dir / METRICS_NAME, self.history["validation"])
        self.run_log.scalars({f"val/{k}": v for k, v in result.items() if k != "images"}, self.step)
        return result

    def save(self) -> Path | None:
        if not self.ctx.is_main:
            return None
        path = self.manager.save(self.state_dict(), self.step)
        log.info("checkpoint saved: %s", path)
        return path

    def export(self) -> Path:
        """Write the final weights (EMA when on and ``train.export_ema``) as safetensors."""
        o = self.optimisation
        model = o.eval_model() if self.cfg.train.export_ema else o.raw_model
        meta = {
            "model": self.cfg.model.name,
            "options": self.cfg.model.options,
            "task": self.cfg.task,
            "step": self.step,
            "ema": o.ema is not None and self.cfg.train.export_ema,
        }
        return export_weights(model.state_dict(), self.out_dir / WEIGHTS_NAME, meta)

    # -- the run ------------------------------------------------------------------------
    def _set_up(self, dataset: PatchDataset) -> None:
        """Build everything, find and load the checkpoint to resume from; writes nothing."""
        cfg = self.cfg
        for path, reason in dataset.skipped:
            log.warning("skipping an unreadable training image: %s", reason or path)
        if cfg.train.num_threads > 0:
            torch.set_num_threads(cfg.train.num_threads)
        found = find_resume(self.resume, self.manager, self.restart)
        self.optimisation = Optimisation(cfg, self.ctx, initial_weights=found is None)
        self.dataset = dataset
        self.sampler, self.loader, self.loader_generator = _make_loader(dataset, cfg, self.ctx)
        if found is not None:
            path, state = found
            log_config_changes(state["config"], cfg)
            self.load_state_dict(state)
            log.info("resumed from %s at step %d", path, self.step)

    def run(self) -> dict[str, Any]:
        """Train to ``train.total_steps`` (or until a signal); returns a summary."""
        cfg, ctx = self.cfg, self.ctx
        # the data is read before anything is written, so a mistake leaves nothing
        dataset = PatchDataset.from_config(cfg)
        threads = torch.get_num_threads()
        try:
            with RunLog(ctx.is_main) as self.run_log:
                self._set_up(dataset)
                if ctx.is_main:
                    self.run_log.open_file(self.out_dir, cfg.train.tensorboard)
                    save_config(cfg, self.out_dir / "config.yaml")
                    log.info(
                        "model %s (%d parameters), task %s, %d training images, global "
                        "batch %d on %d process(es), device %s",
                        cfg.model.name,
                        self.optimisation.parameter_count,
                        cfg.task,
                        len(dataset.files),
                        cfg.data.batch_size,
                        ctx.world_size,
                        ctx.device,
                    )
                with StopRequest() as self.stop:
                    return self._loop()
        finally:
            torch.set_num_threads(threads)

    def _after_step(self, progress: Progress) -> float | None:
        """Log, validate and save on their schedules; the mean loss when it was logged."""
        t, total = self.cfg.train, self.cfg.train.total_steps
        loss = None
        if self.step % t.log_every == 0 or self.step == total:
            loss = progress.report(self.step, self.optimisation.lr, self.ctx)
            self.history["loss"].append({"step": self.step, "loss": loss})
        if self.step % self.cfg.validation.every == 0 and self.step < total:
            self.run_validation()
            barrier(self.ctx)
        if self.step % t.checkpoint_every == 0 and self.step < total:
            self.save()
        return loss

    def _loop(self) -> dict[str, Any]:
        cfg, ctx = self.cfg, self.ctx
        total = cfg.train.total_steps
        progress = Progress(
            self.run_log,
            total,
            cfg.data.batch_size,
            self.step,
            ctx.is_main and cfg.train.progress_bar,
            ctx.device,
        )
        last_loss, interrupted, out_of_time = math.nan, False, False
        limit = cfg.train.time_limit_minutes
        self.clock.start()
        try:
            while self.step < total and not (interrupted or out_of_time):
                epoch, start_batch = divmod(self.step, self.sampler.batches_per_epoch)
                self.sampler.set_epoch(epoch, start_batch)
                for batch in self.loader:
                    progress.add(self.train_step(batch))
                    self.step += 1
                    logged = self._after_step(progress)
                    last_loss = last_loss if logged is None else logged
                    interrupted = all_reduce_flag(self.stop.requested, ctx)
                    out_of_time = limit > 0 and all_reduce_flag(
                        self.clock.sitting_minutes() >= limit, ctx
                    )
                    if interrupted or out_of_time or self.step >= total:
                        break
        finally:
            progress.close()
        return self._finish(interrupted, out_of_time, last_loss)

    def _finish(self, interrupted: bool, out_of_time: bool, last_loss: float) -> dict[str, Any]:
        out_of_time = out_of_time and not interrupted and self.step < self.cfg.train.total_steps
        summary = {
            "step": self.step,
            "interrupted": interrupted,
            "time_limit_reached": out_of_time,
            "loss": last_loss,
        }
        if interrupted:
            self.save()
            barrier(self.ctx)
            log.warning("stopped at step %d; resume with --resume", self.step)
            return {**summary, "history": self.history}
        if out_of_time:
            log.warning(
                "time limit of %g minutes reached at step %d: validating, saving and exporting "
                "the weights so far; resume with --resume",
                self.cfg.train.time_limit_minutes,
                self.step,
            )
        val = self.run_validation()  # before the checkpoint, which then holds its result
        self.save()
        weights = self.export() if self.ctx.is_main else None
        if weights is not None:
            log.info("%s: %s", "weights so far" if out_of_time else "final weights", weights)
        barrier(self.ctx)
        return {
            **summary,
            "validation": val,
            "weights": str(weights) if weights is not None else None,
            "history": self.history,
        }


def train(
    cfg: Config, out_dir: str | Path, resume: str | Path | None = None, restart: bool = False
) -> dict[str, Any]:
    """Run :class:`Trainer` in this process (joining the ``torchrun`` group if any)."""
    ctx = init_distributed(cfg.train.device)
    try:
        return Trainer(cfg, out_dir, resume=resume, ctx=ctx, restart=restart).run()
    finally:
        cleanup_distributed()
