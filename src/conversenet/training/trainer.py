"""The training loop: Adam, L1/L2/Charbonnier loss, multi-step decay, clipping, EMA, AMP.

One :class:`Trainer` runs one configuration in one run folder::

    run/
      config.yaml              the resolved configuration
      train.log                the text log (rank 0)
      checkpoint_<step>.pt     the last ``train.keep_last`` checkpoints (+ .sha256 sidecars)
      model.safetensors        the final weights (EMA weights when EMA is on)
      tensorboard/             scalars, when tensorboard is installed

A run folder that already holds checkpoints is resumed from its newest valid checkpoint.
Training is step based; the data seen at step ``s`` is a function of ``(seed, s)`` only
(see :mod:`conversenet.training.datasets`), and a checkpoint stores the model, the EMA,
the optimiser, the scheduler, the AMP scaler, the step and every random generator, so on
CPU a resumed run reproduces the uninterrupted one bit for bit. SIGINT (Ctrl-C) and
SIGTERM finish the current step, write a checkpoint and stop.
"""

from __future__ import annotations

import copy
import logging
import math
import signal
import threading
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..models import create_model
from ..tasks import call_model
from .checkpoint import (
    CheckpointError,
    CheckpointManager,
    export_weights,
    get_rng_state,
    load_checkpoint,
    set_rng_state,
)
from .config import Config, config_from_dict, config_to_dict, save_config
from .datasets import PatchDataset, ShardedSampler, worker_init_fn
from .distributed import (
    DistContext,
    all_reduce_flag,
    barrier,
    cleanup_distributed,
    init_distributed,
)
from .validation import make_protocol, validate

__all__ = ["ModelEMA", "Trainer", "build_loss", "build_model", "train"]

log = logging.getLogger("conversenet.training")

WEIGHTS_NAME = "model.safetensors"


# ---------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------
def build_model(cfg: Config) -> nn.Module:
    """``create_model(cfg.model.name, **cfg.model.options)`` (untrained)."""
    return create_model(cfg.model.name, **cfg.model.options)


def build_loss(name: str, charbonnier_eps: float = 1e-3):
    """``l1`` (mean absolute error), ``l2`` (mean squared error) or ``charbonnier``
    (mean of ``sqrt((x - y)² + eps²)``)."""
    if name == "l1":
        return F.l1_loss
    if name == "l2":
        return F.mse_loss
    if name == "charbonnier":
        eps2 = float(charbonnier_eps) ** 2

        def charbonnier(pred: Tensor, target: Tensor) -> Tensor:
            return torch.sqrt((pred - target).square() + eps2).mean()

        return charbonnier
    raise ValueError(f"unknown loss {name!r}; expected 'l1', 'l2' or 'charbonnier'")


class ModelEMA:
    """Exponential moving average of a model's weights (buffers are copied).

    ``ema = decay * ema + (1 - decay) * weights`` after every optimiser step.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_state = self.module.state_dict()
        for name, value in model.state_dict().items():
            target = ema_state[name]
            if target.is_floating_point():
                target.lerp_(value.detach(), 1.0 - self.decay)
            else:
                target.copy_(value)

    def state_dict(self) -> dict[str, Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.module.load_state_dict(state)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record))
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _setup_logging(out_dir: Path | None, is_main: bool) -> list[logging.Handler]:
    handlers: list[logging.Handler] = []
    if not is_main:
        log.setLevel(logging.WARNING)
        return handlers
    log.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    console = _TqdmHandler()
    console.setFormatter(fmt)
    handlers.append(console)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(out_dir / "train.log", encoding="utf-8")
        file_handler.setFormatter(fmt)
        handlers.append(file_handler)
    for h in handlers:
        log.addHandler(h)
    log.propagate = False
    return handlers


def _tensorboard_writer(folder: Path):
    try:  # tensorboard is an optional extra
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard is not installed: no TensorBoard scalars (pip install tensorboard)")
        return None
    return SummaryWriter(log_dir=str(folder))


# ---------------------------------------------------------------------------------------
# the trainer
# ---------------------------------------------------------------------------------------
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
        self._stop_requested = False
        self._signal_count = 0
        self.step = 0
        self.history: dict[str, list[dict[str, float]]] = {"loss": [], "validation": []}

    # -- set-up -------------------------------------------------------------------------
    def _setup(self, dataset: PatchDataset) -> None:
        cfg, ctx = self.cfg, self.ctx
        if cfg.train.num_threads > 0:
            torch.set_num_threads(cfg.train.num_threads)
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
        model = build_model(cfg).to(ctx.device)
        self.ema = ModelEMA(model, cfg.optim.ema_decay) if cfg.optim.ema_decay > 0 else None
        self.raw_model = model
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.model = model
        o = cfg.optim
        self.optimizer = torch.optim.Adam(
            self.raw_model.parameters(), lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(o.milestones), gamma=o.gamma
        )
        self.loss_fn = build_loss(o.loss, o.charbonnier_eps)
        self.use_amp = bool(o.amp) and ctx.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if o.amp_dtype == "bfloat16" else torch.float16
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16
        )

        self.dataset = dataset
        self.sampler = ShardedSampler(
            self.dataset, cfg.data.batch_size, ctx.world_size, ctx.rank, seed=cfg.train.seed
        )
        loader_gen = torch.Generator()
        loader_gen.manual_seed(cfg.train.seed * 1000 + ctx.rank)
        workers = cfg.data.num_workers
        self.loader = DataLoader(
            self.dataset,
            batch_size=self.sampler.local_batch,
            sampler=self.sampler,
            num_workers=workers,
            pin_memory=ctx.device.type == "cuda",
            worker_init_fn=worker_init_fn,
            generator=loader_gen,
            persistent_workers=workers > 0,
        )
        self.loader_generator = loader_gen
        self.manager = CheckpointManager(self.out_dir, cfg.train.keep_last)

        self.val_protocol = None
        if cfg.validation.dir is not None:
            self.val_protocol = make_protocol(
                cfg.task,
                sigma=cfg.validation.sigma,
                scale=cfg.degradation.scale,
                kernel=cfg.validation.kernel,
                channels=cfg.data.channels,
            )

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly."""
        return {
            "model": self.raw_model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "rng": get_rng_state(),
            "loader_generator": self.loader_generator.get_state(),
            "config": config_to_dict(self.cfg),
            "history": self.history,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            self.raw_model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise CheckpointError(
                f"the checkpoints in {self.out_dir} were written by another model than "
                f"{self.cfg.model.name} with these options ({str(err).splitlines()[0]}); "
                "train this configuration into a new --out folder"
            ) from None
        if self.ema is not None:
            if state.get("ema") is None:
                log.warning("the checkpoint has no EMA weights: starting the EMA from the model")
                self.ema.load_state_dict(state["model"])
            else:
                self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        # the schedule comes from the config (identical unless the config was changed)
        self.scheduler.milestones = Counter(self.cfg.optim.milestones)
        self.scheduler.gamma = self.cfg.optim.gamma
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        if state.get("loader_generator") is not None:
            self.loader_generator.set_state(state["loader_generator"])
        saved = state.get("history") or {}
        if isinstance(saved, list):  # older checkpoints kept only the validation results
            saved = {"validation": saved}
        self.history = {k: list(saved.get(k, [])) for k in ("loss", "validation")}

    def _find_resume(self) -> tuple[Path, dict[str, Any]] | None:
        resume = self.resume
        if resume is None or resume == "auto":
            found = self.manager.latest_valid()
            if found is None and resume == "auto":
                if self.manager.checkpoints():
                    raise CheckpointError(f"no valid checkpoint in {self.out_dir}")
                raise CheckpointError(f"--resume: no checkpoint in {self.out_dir}")
            if found is None and self.manager.checkpoints() and not self.restart:
                damaged = ", ".join(p.name for p in self.manager.checkpoints())
                raise CheckpointError(
                    f"every checkpoint in {self.out_dir} is damaged ({damaged}): the run cannot "
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

    def _check_resumed_config(self, saved: dict[str, Any]) -> None:
        try:
            old = config_to_dict(config_from_dict(saved))
        except ValueError:
            log.warning("the checkpoint's config does not validate any more; continuing")
            return
        new = config_to_dict(self.cfg)
        for section, values in new.items():
            if isinstance(values, dict):
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
            elif old.get(section) != values:
                log.warning(
                    "config changed since the checkpoint: %s %r -> %r",
                    section,
                    old.get(section),
                    values,
                )

    # -- signals ------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._signal_count += 1
        if self._signal_count > 1:
            raise KeyboardInterrupt
        self._stop_requested = True
        log.warning(
            "received %s: saving a checkpoint after this step (press Ctrl-C again to abort)",
            signal.Signals(signum).name,
        )

    def _install_signal_handlers(self) -> dict:
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    # -- steps --------------------------------------------------------------------------
    def _forward(self, batch: dict[str, Tensor]) -> Tensor:
        return call_model(self.model, batch["input"], batch.get("kernel"))

    def train_step(self, batch: dict[str, Tensor]) -> Tensor:
        """One optimiser step on a batch; returns the (detached) loss."""
        dev = self.ctx.device
        batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
        self.model.train()
        amp = (
            torch.autocast(device_type="cuda", dtype=self.amp_dtype)
            if self.use_amp
            else nullcontext()
        )
        with amp:
            pred = self._forward(batch)
        if pred.shape != batch["target"].shape:
            raise ValueError(
                f"{self.cfg.model.name} returned shape {tuple(pred.shape)} for an input of "
                f"shape {tuple(batch['input'].shape)}, but the target has shape "
                f"{tuple(batch['target'].shape)}: do the model options (e.g. upscale, "
                "in_channels) match the task, data.channels and degradation.scale?"
            )
        loss = self.loss_fn(pred.float(), batch["target"])
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.raw_model)
        return loss.detach()

    def eval_model(self) -> nn.Module:
        """The weights to validate and export: the EMA when it is on, else the model."""
        return self.ema.module if self.ema is not None else self.raw_model

    def run_validation(self) -> dict[str, float] | None:
        if self.val_protocol is None or not self.ctx.is_main:
            return None
        start = time.perf_counter()
        result = validate(
            self.eval_model(),
            self.cfg.validation.dir,
            self.val_protocol,
            max_images=self.cfg.validation.max_images,
        )
        msg = " ".join(f"{k} {v:.3f}" for k, v in result.items() if k != "images")
        log.info(
            "validation step %d: %s (%d images, %.1f s)",
            self.step,
            msg,
            result["images"],
            time.perf_counter() - start,
        )
        self.history["validation"].append({"step": self.step, **result})
        if self.writer is not None:
            for k, v in result.items():
                if k != "images":
                    self.writer.add_scalar(f"val/{k}", v, self.step)
        return result

    def save(self) -> Path | None:
        if not self.ctx.is_main:
            return None
        path = self.manager.save(self.state_dict(), self.step)
        log.info("checkpoint saved: %s", path)
        return path

    def export(self) -> Path:
        """Write the final weights (EMA when on and ``train.export_ema``) as safetensors."""
        model = self.eval_model() if self.cfg.train.export_ema else self.raw_model
        meta = {
            "model": self.cfg.model.name,
            "options": self.cfg.model.options,
            "task": self.cfg.task,
            "step": self.step,
            "ema": self.ema is not None and self.cfg.train.export_ema,
        }
        return export_weights(model.state_dict(), self.out_dir / WEIGHTS_NAME, meta)

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train to ``train.total_steps`` (or until a signal); returns a summary."""
        cfg, ctx = self.cfg, self.ctx
        # the data is read before the run folder is created, so a mistake leaves nothing
        dataset = PatchDataset.from_config(cfg)
        handlers = _setup_logging(self.out_dir, ctx.is_main)
        self.writer = None
        previous = {}
        threads = torch.get_num_threads()
        try:
            for path, reason in dataset.skipped:
                log.warning("skipping an unreadable training image: %s", reason or path)
            self._setup(dataset)
            found = self._find_resume()
            if found is not None:
                path, state = found
                self._check_resumed_config(state["config"])
                self.load_state_dict(state)
                log.info("resumed from %s at step %d", path, self.step)
            if ctx.is_main:
                save_config(cfg, self.out_dir / "config.yaml")
                if cfg.train.tensorboard:
                    self.writer = _tensorboard_writer(self.out_dir / "tensorboard")
                n_params = sum(p.numel() for p in self.raw_model.parameters())
                log.info(
                    "model %s (%d parameters), task %s, %d training images, global batch %d "
                    "on %d process(es), device %s",
                    cfg.model.name,
                    n_params,
                    cfg.task,
                    len(self.dataset.files),
                    cfg.data.batch_size,
                    ctx.world_size,
                    ctx.device,
                )
            previous = self._install_signal_handlers()
            summary = self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            torch.set_num_threads(threads)
            if self.writer is not None:
                self.writer.close()
            for h in handlers:
                log.removeHandler(h)
                h.close()
        return summary

    def _loop(self) -> dict[str, Any]:
        cfg, ctx = self.cfg, self.ctx
        total = cfg.train.total_steps
        bpe = self.sampler.batches_per_epoch
        bar = None
        if ctx.is_main and cfg.train.progress_bar:
            bar = tqdm(total=total, initial=self.step, desc="train", unit="it", dynamic_ncols=True)
        loss_sum = torch.zeros((), device=ctx.device)
        loss_count = 0
        last_loss = math.nan
        tick, tick_step = time.perf_counter(), self.step
        interrupted = False
        try:
            while self.step < total and not interrupted:
                epoch, start_batch = divmod(self.step, bpe)
                self.sampler.set_epoch(epoch, start_batch)
                for batch in self.loader:
                    loss = self.train_step(batch)
                    self.step += 1
                    loss_sum += loss
                    loss_count += 1
                    if bar is not None:
                        bar.update(1)
                    if self.step % cfg.train.log_every == 0 or self.step == total:
                        mean = loss_sum / max(loss_count, 1)
                        if ctx.distributed:
                            torch.distributed.all_reduce(mean)
                            mean = mean / ctx.world_size
                        last_loss = float(mean)
                        now = time.perf_counter()
                        speed = (self.step - tick_step) / max(now - tick, 1e-9)
                        tick, tick_step = now, self.step
                        lr = self.optimizer.param_groups[0]["lr"]
                        loss_sum.zero_()
                        loss_count = 0
                        self.history["loss"].append({"step": self.step, "loss": last_loss})
                        if bar is not None:
                            bar.set_postfix(loss=f"{last_loss:.4g}", lr=f"{lr:.2g}")
                        if ctx.is_main:
                            log.info(
                                "step %d/%d loss %.6f lr %.3g %.2f it/s %.1f img/s",
                                self.step,
                                total,
                                last_loss,
                                lr,
                                speed,
                                speed * cfg.data.batch_size,
                            )
                            if self.writer is not None:
                                self.writer.add_scalar("train/loss", last_loss, self.step)
                                self.writer.add_scalar("train/lr", lr, self.step)
                                self.writer.add_scalar("train/it_per_s", speed, self.step)
                    if self.step % cfg.validation.every == 0 and self.step < total:
                        self.run_validation()
                        barrier(ctx)
                    if self.step % cfg.train.checkpoint_every == 0 and self.step < total:
                        self.save()
                    interrupted = all_reduce_flag(self._stop_requested, ctx)
                    if interrupted or self.step >= total:
                        break
        finally:
            if bar is not None:
                bar.close()
        if interrupted:
            self.save()
            barrier(ctx)
            log.warning("stopped at step %d; resume with --resume", self.step)
            return {
                "step": self.step,
                "interrupted": True,
                "loss": last_loss,
                "history": self.history,
            }
        self.save()
        val = self.run_validation()
        weights = self.export() if ctx.is_main else None
        if weights is not None:
            log.info("final weights: %s", weights)
        barrier(ctx)
        return {
            "step": self.step,
            "interrupted": False,
            "loss": last_loss,
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
