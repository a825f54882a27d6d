"""What one training step changes: the model, its EMA, Adam, the schedule, the AMP scaler.

:class:`Optimisation` builds them from a configuration (seeded, so every data-parallel rank
starts from the same weights), runs one optimiser step on a batch
(:meth:`Optimisation.train_step`) and saves and restores them. A checkpoint without Adam's
moments (a small checkpoint, see :mod:`conversenet.training.checkpoint`) restarts Adam from
zero moments with the learning rate ramped up linearly over ``optim.warm_restart_steps``
steps (a *warm restart*): Adam's first steps from zero moments move every weight by about
the full learning rate, whatever its gradient, and the ramp keeps that jump small.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models import create_model
from ..tasks import call_model
from ..weights import load_state_dict, load_weights_into
from .checkpoint import CheckpointError
from .config import Config
from .distributed import DistContext

__all__ = ["ModelEMA", "Optimisation", "build_loss", "build_model", "no_harm_penalty"]

log = logging.getLogger("conversenet.training")


def build_model(cfg: Config, initial_weights: bool = True) -> nn.Module:
    """``create_model(cfg.model.name, **cfg.model.options)``: untrained, or with the weights
    of ``cfg.model.init_weights`` when ``initial_weights`` (a new run, not a resumed one).

    Raises:
        ValueError: ``init_weights`` names a file that does not exist, or weights that do
            not fit the model.
    """
    m = cfg.model
    if not initial_weights or m.init_weights is None:
        return create_model(m.name, **m.options)
    if m.init_weights == "pretrained":
        return create_model(m.name, pretrained=True, **m.options)
    if not Path(m.init_weights).is_file():
        raise ValueError(
            f"model.init_weights must be a weights file or 'pretrained', got "
            f"{m.init_weights!r}, which is not a file"
        )
    model = create_model(m.name, **m.options)  # any weights that fit: a denoiser's for a deblurrer
    load_weights_into(model, load_state_dict(m.init_weights), source=m.init_weights)
    return model


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


def no_harm_penalty(pred: Tensor, target: Tensor, degraded: Tensor) -> Tensor:
    r"""How many dB each sample of ``pred`` is worse than its ``degraded`` input, 0 where
    it is better, averaged over the batch:
    :math:`\frac1N\sum_i \max(0,\ 10\log_{10}(\mathrm{MSE}(\hat x_i, x_i) /
    \mathrm{MSE}(y_i, x_i)))`. A loss term that teaches a restorer to leave alone what it
    cannot improve (the mean squared errors are floored at 1e-10, a PSNR of 100 dB).

    Shape:
        - pred, target, degraded: :math:`(N, C, H, W)`; output: a scalar.
    """
    dims = tuple(range(1, pred.dim()))
    error = (pred - target).square().mean(dims).clamp(min=1e-10)
    baseline = (degraded - target).square().mean(dims).clamp(min=1e-10)
    return F.relu(10 * torch.log10(error / baseline)).mean()


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


class Optimisation:
    """The model (DDP-wrapped when data-parallel), its EMA, Adam, the multi-step schedule,
    the loss and mixed precision of a configuration.

    Args:
        cfg: a validated configuration (``model``, ``optim`` and ``train.seed`` are used).
        ctx: where this process runs.
        initial_weights: load ``model.init_weights`` (a new run; a resumed one loads its
            checkpoint instead).
    """

    def __init__(self, cfg: Config, ctx: DistContext, initial_weights: bool = True) -> None:
        self.cfg, self.ctx = cfg, ctx
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
        model = build_model(cfg, initial_weights).to(ctx.device)
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
        self.warmup_done = self.warmup_total = 0  # the ramp of a warm restart

    @property
    def lr(self) -> float:
        """The scheduled learning rate (before any warm-restart ramp)."""
        return self.optimizer.param_groups[0]["lr"]

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.raw_model.parameters())

    def eval_model(self) -> nn.Module:
        """The weights to validate and export: the EMA when it is on, else the model."""
        return self.ema.module if self.ema is not None else self.raw_model

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
            pred = call_model(self.model, batch["input"], batch.get("kernel"))
        if pred.shape != batch["target"].shape:
            raise ValueError(
                f"{self.cfg.model.name} returned shape {tuple(pred.shape)} for an input of "
                f"shape {tuple(batch['input'].shape)}, but the target has shape "
                f"{tuple(batch['target'].shape)}: do the model options (e.g. upscale, "
                "in_channels) match the task, data.channels and degradation.scale?"
            )
        loss = self.loss_fn(pred.float(), batch["target"])
        if self.cfg.optim.no_harm_weight > 0:
            penalty = no_harm_penalty(pred.float(), batch["target"], batch["input"])
            loss = loss + self.cfg.optim.no_harm_weight * penalty
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.cfg.optim.grad_clip)
        self._optimizer_step()
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.raw_model)
        return loss.detach()

    def _optimizer_step(self) -> None:
        if self.warmup_done >= self.warmup_total:
            self.scaler.step(self.optimizer)
            return
        self.warmup_done += 1
        factor = self.warmup_done / self.warmup_total
        scheduled = [group["lr"] for group in self.optimizer.param_groups]
        for group, lr in zip(self.optimizer.param_groups, scheduled, strict=True):
            group["lr"] = lr * factor
        try:
            self.scaler.step(self.optimizer)
        finally:  # the scheduler keeps chaining from the scheduled rates
            for group, lr in zip(self.optimizer.param_groups, scheduled, strict=True):
                group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.raw_model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "warmup": [self.warmup_done, self.warmup_total],
        }

    def _schedule_from_config(self) -> None:
        """Take the schedule (lr, milestones, gamma) from the config, not the checkpoint, so
        that a resumed run with a changed ``optim`` section follows the new schedule: the
        rate at the checkpoint's step is ``lr * gamma ** (milestones passed)``."""
        o = self.cfg.optim
        self.scheduler.milestones = Counter(o.milestones)
        self.scheduler.gamma = o.gamma
        passed = sum(1 for m in o.milestones if m <= self.scheduler.last_epoch)
        self.scheduler.base_lrs = [o.lr] * len(self.optimizer.param_groups)
        for group in self.optimizer.param_groups:
            group["initial_lr"] = o.lr
            group["lr"] = o.lr * o.gamma**passed

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        """Restore what :meth:`state_dict` returned (or a small checkpoint: half-precision
        weights, maybe no Adam moments); ``source`` names it in errors."""
        try:
            self.raw_model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise CheckpointError(
                f"the checkpoints in {source} were written by another model than "
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
        self._schedule_from_config()
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.warmup_done, self.warmup_total = state.get("warmup") or (0, 0)
        if int(state["step"]) > 0 and not state["optimizer"]["state"]:
            self.warmup_done, self.warmup_total = 0, self.cfg.optim.warm_restart_steps
            log.warning(
                "the checkpoint has no optimiser moments (a small checkpoint): warm restart, "
                "Adam starts from zero moments and the learning rate ramps up over %d steps",
                self.warmup_total,
            )
