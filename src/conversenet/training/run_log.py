"""What a run reports: the console and ``train.log``, TensorBoard, and ``metrics.csv``.

:class:`RunLog` sends the ``conversenet.training`` logger to the console at once and keeps
the records in memory until :meth:`RunLog.open_file` is called, once the run has been set
up: a run that fails before (a bad ``--resume`` path, an unreadable checkpoint) leaves no
run folder and no ``train.log`` behind. :class:`Progress` averages the losses between log
lines and reports them (log line, progress bar, TensorBoard); :func:`write_metrics`
writes the validation results against training time as CSV (the learning curve).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from .checkpoint import atomic_write
from .distributed import DistContext

__all__ = ["METRICS_NAME", "Progress", "RunLog", "write_metrics"]

log = logging.getLogger("conversenet.training")

LOG_NAME = "train.log"
METRICS_NAME = "metrics.csv"
_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record))
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


class _Buffer(logging.Handler):
    """Keeps the records until the log file exists."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _tensorboard_writer(folder: Path):
    try:  # tensorboard is an optional extra
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard is not installed: no TensorBoard scalars (pip install tensorboard)")
        return None
    return SummaryWriter(log_dir=str(folder))


class RunLog:
    """The training logger's handlers for one run (rank 0 logs; other ranks only warn).

    Use as a context manager; :meth:`open_file` creates the run folder's ``train.log``
    (with the records logged so far) and, if asked, the TensorBoard writer.
    """

    def __init__(self, is_main: bool) -> None:
        self.is_main = is_main
        self.handlers: list[logging.Handler] = []
        self.writer = None
        self._buffer: _Buffer | None = None

    def __enter__(self) -> RunLog:
        if not self.is_main:
            log.setLevel(logging.WARNING)
            return self
        log.setLevel(logging.INFO)
        console = _TqdmHandler()
        self._buffer = _Buffer()
        for handler in (console, self._buffer):
            handler.setFormatter(_FORMAT)
            self._add(handler)
        log.propagate = False
        return self

    def _add(self, handler: logging.Handler) -> None:
        self.handlers.append(handler)
        log.addHandler(handler)

    def _remove(self, handler: logging.Handler) -> None:
        self.handlers.remove(handler)
        log.removeHandler(handler)
        handler.close()

    def open_file(self, out_dir: Path, tensorboard: bool = False) -> None:
        """Start ``out_dir/train.log`` with the buffered records (rank 0 only)."""
        if not self.is_main or self._buffer is None:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(out_dir / LOG_NAME, encoding="utf-8")
        file_handler.setFormatter(_FORMAT)
        for record in self._buffer.records:
            file_handler.handle(record)
        self._remove(self._buffer)
        self._buffer = None
        self._add(file_handler)
        if tensorboard:
            self.writer = _tensorboard_writer(out_dir / "tensorboard")

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Add ``values`` to TensorBoard (when it is on)."""
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def __exit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
        for handler in list(self.handlers):
            self._remove(handler)


class Progress:
    """The training losses between two log lines, and their report.

    Args:
        run_log: where scalars go.
        total: the run's last step.
        batch_size: the global batch (for images per second).
        step: the step the sitting starts at.
        bar: show a tqdm progress bar.
        device: where the losses are summed (no synchronisation per step).
    """

    def __init__(
        self,
        run_log: RunLog,
        total: int,
        batch_size: int,
        step: int,
        bar: bool,
        device: torch.device,
    ) -> None:
        self.run_log, self.total, self.batch_size = run_log, total, batch_size
        self.bar = (
            tqdm(total=total, initial=step, desc="train", unit="it", dynamic_ncols=True)
            if bar
            else None
        )
        self.loss_sum = torch.zeros((), device=device)
        self.count = 0
        self.tick, self.tick_step = time.perf_counter(), step

    def add(self, loss: Tensor) -> None:
        self.loss_sum += loss
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)

    def _mean_loss(self, ctx: DistContext) -> float:
        """The mean loss since the last report (over every rank), then start afresh."""
        mean = self.loss_sum / max(self.count, 1)
        if ctx.distributed:
            torch.distributed.all_reduce(mean)
            mean = mean / ctx.world_size
        self.loss_sum = torch.zeros_like(self.loss_sum)
        self.count = 0
        return float(mean)

    def report(self, step: int, lr: float, ctx: DistContext) -> float:
        """Log the mean loss since the last report, the rate and the speed; returns the loss."""
        loss = self._mean_loss(ctx)
        now = time.perf_counter()
        speed = (step - self.tick_step) / max(now - self.tick, 1e-9)
        self.tick, self.tick_step = now, step
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.2g}")
        log.info(
            "step %d/%d loss %.6f lr %.3g %.2f it/s %.1f img/s",
            step,
            self.total,
            loss,
            lr,
            speed,
            speed * self.batch_size,
        )
        self.run_log.scalars({"train/loss": loss, "train/lr": lr, "train/it_per_s": speed}, step)
        return loss

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the validation results (one row per validation) as CSV, atomically."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    atomic_write(path, lambda f: f.write(text.getvalue()), mode="w")
