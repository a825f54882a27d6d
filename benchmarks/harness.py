"""The benchmark harness: one timer, one memory probe, one argument parser and one record
format for every script in ``benchmarks/``.

* Time (:func:`interleave`): after ``warmup`` untimed calls of each variant, the variants
  run in turn ``repeats`` times, so that a change in the machine's load hits them alike;
  the wall-clock and process CPU time of every call are kept, with
  ``torch.cuda.synchronize()`` around each call on CUDA. A speed claim is a ratio of the
  medians of two variants timed together.
* Memory (:func:`peak_rise_mib`, :func:`in_fresh_process`): how far the resident set size
  rose above what the process held before the call (Linux ``VmHWM``, reset first), in a
  fresh Python process, so that neither an earlier measurement nor the allocator's cache
  hides it. On CUDA, :func:`interleave` also gives the memory one more call allocated at
  its peak.
* Arguments (:class:`Parser`): ``--quick`` (tiny sizes, one repeat, one thread: a smoke
  run whose figures mean nothing), ``--json PATH``, ``--repeats``, ``--warmup``,
  ``--threads`` and each script's own options with a normal and a quick default.
* Records (:class:`Results`): one flat dict per measured row (benchmark, case, variant,
  size, seconds: median, min and max, CPU seconds, peak MiB, load average, threads,
  torch version, and the script's own figures), written by ``--json PATH``.

Run a benchmark from the repository root: ``python -m benchmarks.bench_converse2d --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


# ---------------------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------------------
def machine_load() -> str:
    """The 1/5/15-minute load averages and the number of CPUs, for the report."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def environment() -> dict[str, Any]:
    """What every record carries about the run: torch, threads, load, CPUs."""
    one, five, fifteen = os.getloadavg()
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_1min": one,
        "load_5min": five,
        "load_15min": fifteen,
        "cpus": os.cpu_count(),
    }


def run_header(details: str) -> str:
    """``torch X, N thread(s), <details>; load average ...``: the first line of a report."""
    return (
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {details}; "
        f"{machine_load()}"
    )


# ---------------------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------------------
def sync(device: torch.device | str | None) -> None:
    """Wait for the device (CUDA) to finish its queued work; nothing on the CPU."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def release(device: torch.device | str | None) -> None:
    """Give the cached CUDA memory back (so one case's cache does not crowd the next)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``precision`` on the device's type (nothing for float32)."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=getattr(torch, precision))


@dataclass
class Timing:
    """The times of one variant: every timed call's wall and CPU seconds, the result of its
    last warm-up call and, on CUDA, the memory one more call allocated at its peak."""

    wall: list[float]
    cpu: list[float]
    result: object = None
    peak_mib: float | None = None

    @property
    def seconds(self) -> float:
        """Median wall-clock seconds."""
        return statistics.median(self.wall)

    @property
    def cpu_seconds(self) -> float:
        """Median CPU seconds of the whole process."""
        return statistics.median(self.cpu)


def timed_call(fn: Callable[[], object], device=None) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result) of one call, the device synchronised around it."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def interleave(
    calls: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    device: torch.device | str | None = None,
    keep_going: bool = False,
) -> dict[str, Timing | Exception]:
    """Time every variant, the timed calls interleaved (the one timer of the benchmarks).

    Each variant first runs ``warmup`` untimed calls (the last one's result is kept);
    then the variants run in turn ``repeats`` times. On CUDA each variant then runs once
    more for its memory peak (``max_memory_allocated`` above what was allocated before).

    Args:
        keep_going: a variant that raises gets its exception as its result and the others
            go on (else the exception propagates).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    results: dict[str, Timing | Exception] = {}
    alive: dict[str, Timing] = {}

    def attempt(name: str, action: Callable[[], object]) -> object:
        try:
            return action()
        except Exception as exc:
            if not keep_going:
                raise
            results[name] = exc
            alive.pop(name, None)
            release(device)
            return None

    for name, fn in calls.items():
        alive[name] = Timing([], [])

        def warm(fn=fn, timing=alive[name]) -> None:
            for _ in range(warmup):
                timing.result = fn()
            sync(device)

        attempt(name, warm)
    for _ in range(repeats):
        for name in [n for n in calls if n in alive]:
            measured = attempt(name, lambda fn=calls[name]: timed_call(fn, device))
            if measured is not None:
                alive[name].wall.append(measured[0])
                alive[name].cpu.append(measured[1])
    if device is not None and torch.device(device).type == "cuda":
        for name in [n for n in calls if n in alive]:
            peak = attempt(name, lambda fn=calls[name]: cuda_peak_mib(fn, device))
            if name in alive:
                alive[name].peak_mib = peak
    results.update(alive)
    return {name: results[name] for name in calls}


def cuda_peak_mib(fn: Callable[[], object], device) -> float:
    """MiB one call of ``fn`` allocates on the CUDA device at its peak, above what was
    allocated before it."""
    sync(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


# ---------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------
def _status_mib(key: str) -> float | None:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status in MiB (None off Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux: clear_refs 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """The peak resident memory of this process so far (since it started, or since the
    last :func:`peak_rise_mib`), in MiB."""
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rise_mib(fn: Callable[[], object]) -> float | None:
    """How far the resident set rose above its size before ``fn()``, in MiB, at its peak.

    Meant for a fresh process (:func:`in_fresh_process`): there nothing freed earlier sits
    in the allocator to be reused. ``ru_maxrss`` is no use here (Linux carries a parent's
    peak over ``fork`` and ``exec``); off Linux the result is None.
    """
    before = _status_mib("VmRSS")
    if before is None or not _reset_peak():
        fn()
        return None
    fn()
    peak = _status_mib("VmHWM")
    return None if peak is None else peak - before


def _fresh_main(target: Callable[..., dict], kwargs: dict, connection) -> None:
    try:
        connection.send(("ok", target(**kwargs)))
    except BaseException:
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def in_fresh_process(target: Callable[..., dict], **kwargs: Any) -> dict:
    """``target(**kwargs)`` run in a fresh Python process; its dict of results.

    A new interpreter, which imports ``target``'s module (and the main module) and calls
    it: nothing allocated or freed before sits in its heap. (A fork of a process that has
    imported torch would not do: its shared libraries' pages, faulted in again by the
    first call, would count in the rise.) ``target`` is a module-level function;
    ``kwargs`` and the result are picklable. An exception in the child is raised here as
    a RuntimeError with the child's traceback.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_fresh_main, args=(target, kwargs, sender))
    process.start()
    sender.close()
    try:
        status, result = receiver.recv()
    except EOFError:
        status, result = "error", "the process ended without a result"
    finally:
        receiver.close()
        process.join()
    if status != "ok":
        name = getattr(target, "__qualname__", target)
        raise RuntimeError(
            f"{name} failed in a fresh process (exit code {process.exitcode}):\n{result}"
        )
    return result


def in_fresh_processes(target: Callable[..., dict], jobs: Sequence[dict]) -> list[dict]:
    """:func:`in_fresh_process` for each kwargs of ``jobs``, as many at once as there are
    CPUs (for memory only: processes running side by side do not change each other's
    resident memory, but they do change each other's times)."""
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda kwargs: in_fresh_process(target, **kwargs), jobs))


# ---------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """The benchmarks' argument parser: the module docstring as ``--help``, ``--quick``,
    ``--json`` and ``--repeats``/``--warmup``/``--threads`` (each None leaves it out).

    :meth:`option` adds an option with a normal and a ``--quick`` default; the value
    given on the command line wins over both. :meth:`parse_args` sets the torch thread
    count.
    """

    def __init__(
        self,
        doc: str,
        module: str,
        *,
        repeats: tuple[int, int] | None = (5, 1),
        warmup: tuple[int, int] | None = (1, 1),
        threads: tuple[int | None, int] | None = (1, 1),
    ) -> None:
        super().__init__(
            prog=f"python -m {module}",
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        self.benchmark = module.rpartition(".")[2]
        self._defaults: dict[str, tuple[Any, Any]] = {}
        self.add_argument(
            "--quick",
            action="store_true",
            help="tiny sizes, one repeat, one thread: a smoke run (its figures mean nothing)",
        )
        self.add_argument(
            "--json", type=Path, metavar="PATH", help="also write the rows as JSON records"
        )
        if repeats:
            self.option("--repeats", *repeats, type=int, help="timed calls per variant")
        if warmup:
            self.option("--warmup", *warmup, type=int, help="untimed calls of each variant first")
        if threads:
            self.option("--threads", *threads, type=int, help="torch intra-op threads")

    def option(self, flag: str, default: Any, quick: Any, **kwargs: Any) -> None:
        """Add ``flag`` with ``default``, and ``quick`` under ``--quick``."""
        described = "torch's default" if default is None else default
        if isinstance(described, (list, tuple)):
            described = " ".join(map(str, described))
        quick_text = " ".join(map(str, quick)) if isinstance(quick, (list, tuple)) else quick
        kwargs["help"] = f"{kwargs.get('help', '')} (default {described}; --quick {quick_text})"
        action = self.add_argument(flag, default=None, **kwargs)
        self._defaults[action.dest] = (default, quick)

    def parse_args(self, argv: Sequence[str] | None = None) -> argparse.Namespace:  # type: ignore[override]
        args = super().parse_args(argv)
        for dest, (default, quick) in self._defaults.items():
            if getattr(args, dest) is None:
                setattr(args, dest, quick if args.quick else default)
        for name in ("repeats", "warmup", "threads"):
            value = getattr(args, name, None)
            if value is not None and value < 1:
                self.error(f"--{name} must be >= 1, got {value}")
        if getattr(args, "threads", None):
            torch.set_num_threads(args.threads)
        args.benchmark = self.benchmark
        return args


def choose(items: Sequence, numbers: str, what: str = "--cases") -> list:
    """The items named by ``numbers`` ("all" or comma-separated, from 1), else ValueError."""
    if numbers == "all":
        return list(items)
    try:
        chosen = [int(n) for n in numbers.split(",")]
    except ValueError:
        chosen = []
    if not chosen or not all(1 <= n <= len(items) for n in chosen):
        raise ValueError(
            f"{what} takes 'all' or numbers from 1 to {len(items)} separated by commas, "
            f"got {numbers!r}"
        )
    return [items[n - 1] for n in chosen]


# ---------------------------------------------------------------------------------------
# output: Markdown tables and JSON records
# ---------------------------------------------------------------------------------------
def _escape(cell: object) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")


def markdown_row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(_escape(c) for c in cells) + " |"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub Markdown table; ``|`` in cells is escaped, newlines become spaces.

    Raises:
        ValueError: a row with a number of cells other than ``len(headers)``.
    """
    lines = [markdown_row(headers), "|" + "---|" * len(headers)]
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"row {i} has {len(row)} cells, expected {len(headers)}: {row!r}")
        lines.append(markdown_row(row))
    return "\n".join(lines) + "\n"


def side(shape: Sequence[int]) -> int | None:
    """The side of a square (cubic, ...) spatial shape, else None: a record's ``size``."""
    return shape[0] if len(set(shape)) == 1 else None


def mib(value: float | None) -> str:
    """A memory figure in MiB for a table cell (``'n/a'`` where not measured)."""
    return "n/a" if value is None else f"{value:.0f}"


def ratio(baseline: float, ours: float) -> str:
    """``baseline / ours`` as ``'3.10x'`` (> 1: ours is faster)."""
    return f"{baseline / ours:.2f}x" if ours > 0 else "n/a"


def ms_cell(timing: Timing, digits: int = 1) -> str:
    """``'wall / cpu'`` median milliseconds of a timing, for a table cell."""
    return f"{1e3 * timing.seconds:.{digits}f} / {1e3 * timing.cpu_seconds:.{digits}f}"


def speedup_cell(baseline: Timing, timing: Timing) -> str:
    """``'wall / cpu'`` speed-up of ``timing`` over ``baseline`` (ratios of medians)."""
    return (
        f"{ratio(baseline.seconds, timing.seconds)} / "
        f"{ratio(baseline.cpu_seconds, timing.cpu_seconds)}"
    )


@dataclass
class Results:
    """The rows of one benchmark run, as flat JSON records (``--json PATH``)."""

    benchmark: str
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        case: str,
        variant: str,
        *,
        size: int | None = None,
        timing: Timing | None = None,
        peak_mib: float | None = None,
        baseline: Timing | None = None,
        **figures: Any,
    ) -> dict[str, Any]:
        """Record one row: the case, the variant, the image side, the times of ``timing``
        (median, min, max, CPU median, repeats), the peak memory rise, the speed-up over
        ``baseline`` (wall and CPU: ratios of medians) and ``figures``."""
        record: dict[str, Any] = {"benchmark": self.benchmark, "case": case, "variant": variant}
        record["size"] = size
        if timing is not None:
            record.update(
                seconds=timing.seconds,
                seconds_min=min(timing.wall),
                seconds_max=max(timing.wall),
                cpu_seconds=timing.cpu_seconds,
                repeats=len(timing.wall),
            )
            if timing.peak_mib is not None and peak_mib is None:
                peak_mib = timing.peak_mib
        record["peak_mib"] = peak_mib
        if baseline is not None and timing is not None:
            record["speedup"] = baseline.seconds / timing.seconds
            record["speedup_cpu"] = baseline.cpu_seconds / timing.cpu_seconds
        record.update(figures)
        record.update(environment())
        self.records.append(record)
        return record

    def finish(self, path: Path | None) -> int:
        """Print the machine load, write the records to ``path`` (nothing when None),
        atomically; returns 0 (the exit status)."""
        print(f"\n{machine_load()}", flush=True)
        self.write_json(path)
        return 0

    def write_json(self, path: Path | None) -> None:
        """Write the records to ``path`` (nothing when None), atomically."""
        if path is None:
            return
        for record in self.records:  # JSON has no NaN or infinity
            for key, value in record.items():
                if isinstance(value, float) and not math.isfinite(value):
                    record[key] = str(value)
        write_atomic(path, json.dumps(self.records, indent=1) + "\n")
        print(f"wrote {len(self.records)} records to {path}", file=sys.stderr)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
