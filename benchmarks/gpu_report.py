"""GPU report (issue #15): tests, operator and model timings on one device, as Markdown.

On the chosen device the script

1. runs pytest in subprocesses: the CUDA-marked tests (``-m cuda``) and the operator and
   model test files, and records the pass/fail/skip counts;
2. times Converse2D (ours) against the paper's literal algorithm
   (``converse2d_literal``): forward and forward+backward, float32 and autocast
   bfloat16/float16, on the sizes of ``bench_converse2d.py`` plus 1×64×128² at s = 2 and
   8×64×256² at s = 1 (both with the upstream layer defaults: kernel 3, padding 2,
   circular);
3. times the forward pass of the four published models (Converse-DnCNN,
   Converse-SRResNet, ConverseNet, Converse-USRNet) at 512² (the SR model gets a 128²
   input and returns 512²);
4. times Converse-DnCNN training steps per second (Adam, L1): float32, autocast bfloat16,
   autocast float16 with a gradient scaler, and ``torch.compile``;

and writes one Markdown report: a header naming the device, a table of the test runs and
one table of every timed case. Each case runs on its own: a case that raises (out of
memory, an unsupported dtype, ...) gets ``failed: <reason>`` in its cell and the report
goes on. The report is written atomically after every section (so a run cut short still
leaves the finished sections) and at the end.

Times are medians over ``--repeats`` calls after ``--warmup`` calls, interleaved, with
``torch.cuda.synchronize()`` around every call on CUDA (``benchmarks/harness.py``); the
peak memory is ``torch.cuda.max_memory_allocated`` over one more call (CUDA only). The
relative error is the largest difference from the same case computed in float64 on the
same device, over the largest value (forward: the output; forward+backward: the input
gradient). ``--json PATH`` also writes every timed row as records (one per
implementation).

    python -m benchmarks.gpu_report --device cuda --out gpu_report.md --json gpu_report.json
    python -m benchmarks.gpu_report --device cpu --quick --out /tmp/rehearsal.md

``--quick`` shrinks every size (stated in the table) and the repeats; on the CPU it also
skips ``torch.compile`` (the inductor C++ build takes minutes on a small machine).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks import harness
from benchmarks.cases import (
    CONVERSE2D_CASES,
    OperatorCase,
    converse2d_calls,
    converse2d_inputs,
    float64_reference,
    relative_error,
)
from benchmarks.harness import Timing, autocast, markdown_table, release, sync, write_atomic
from benchmarks.internals import use_literal_operator
from conversenet import Converse2D
from conversenet.export import gaussian_kernel
from conversenet.models import create_model, get_model_info

REPO_ROOT = harness.REPO_ROOT
SECTIONS = ("tests", "operator", "models", "training")
PRECISIONS = ("float32", "bfloat16", "float16")
MODEL_NAMES = ("converse_dncnn", "converse_srresnet", "conversenet", "converse_usrnet")
COLUMNS = (
    "section",
    "case",
    "precision",
    "ours",
    "literal",
    "speed-up",
    "peak MiB ours / literal",
    "rel. error ours / literal",
    "notes",
)
TEST_COLUMNS = ("test run", "passed", "failed", "errors", "skipped", "deselected", "time s", "rc")
PENDING = "n/a (not run: the report stopped before this case)"


# ---------------------------------------------------------------------------------------
# pure helpers: cells, tables, case lists
# ---------------------------------------------------------------------------------------
class Interrupted(BaseException):
    """Raised by the SIGTERM handler, so that a killed run still writes its report."""


def short_reason(exc: BaseException, limit: int = 120) -> str:
    """``ExceptionType: first line of the message``, at most ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failed(exc: BaseException) -> str:
    """The cell of a case that raised."""
    return f"failed: {short_reason(exc)}"


def not_available(reason: str) -> str:
    """The cell of a case that is not run, with the reason."""
    return f"n/a ({reason})"


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds with three significant digits, e.g. ``'12.3 ms'``."""
    ms = 1e3 * seconds
    return f"{ms:.3g} ms" if ms < 1000 else f"{ms:.0f} ms"


def fmt_rate(per_second: float, unit: str = "steps/s") -> str:
    """A rate with three significant digits, e.g. ``'4.56 steps/s'``."""
    return f"{per_second:.3g} {unit}" if per_second < 1000 else f"{per_second:.0f} {unit}"


def fmt_speedup(ours_s: float | None, literal_s: float | None) -> str:
    """literal time / our time (> 1: ours is faster), or n/a when either is missing."""
    if ours_s is None or literal_s is None:
        missing = "ours" if ours_s is None else "literal"
        return not_available(f"no time for {missing}")
    if ours_s <= 0:
        raise ValueError(f"ours_s must be > 0 seconds, got {ours_s}")
    return f"{literal_s / ours_s:.2f}×"


def fmt_pair(a: str, b: str) -> str:
    """Two short values as ``'a / b'``."""
    return f"{a} / {b}"


_SUMMARY_KEYS = ("passed", "failed", "errors", "skipped", "deselected", "xfailed", "xpassed")
_SUMMARY_WORDS = {
    "passed": "passed",
    "failed": "failed",
    "error": "errors",
    "errors": "errors",
    "skipped": "skipped",
    "deselected": "deselected",
    "xfailed": "xfailed",
    "xpassed": "xpassed",
}


def parse_pytest_summary(output: str) -> dict[str, int]:
    """Counts from the last summary line of ``pytest -q`` (``'3 passed, 1 skipped in 2s'``).

    Returns a dict with the keys passed, failed, errors, skipped, deselected, xfailed and
    xpassed (0 when absent). Raises ValueError when there is no summary line.
    """
    for line in reversed(output.strip().splitlines()):
        line = line.strip().strip("=").strip()
        if not re.search(r"\bin [\d.]+s\b", line):
            continue
        found = re.findall(r"(\d+) ([a-z]+)", line)
        counts = dict.fromkeys(_SUMMARY_KEYS, 0)
        if not found and "no tests ran" not in line:
            continue
        for number, word in found:
            if word in _SUMMARY_WORDS:
                counts[_SUMMARY_WORDS[word]] += int(number)
        return counts
    raise ValueError("no pytest summary line (like '3 passed in 1.2s') in the output")


def failure_lines(output: str, limit: int = 20) -> list[str]:
    """The ``FAILED ...``/``ERROR ...`` lines of pytest's short summary (at most ``limit``)."""
    found = [
        line.strip()[:200] for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))
    ]
    if len(found) > limit:
        found = [*found[:limit], f"... and {len(found) - limit} more"]
    return found


def operator_cases(quick: bool) -> list[OperatorCase]:
    """The sizes of bench_converse2d.py, then 1×64×128² at s=2 and 8×64×256² at s=1."""
    cases = [
        dataclasses.replace(c, name=f"bench_converse2d case {i} ({c.name})")
        for i, c in enumerate(CONVERSE2D_CASES, start=1)
    ]
    cases.append(OperatorCase("fork's size", 64, 128, 3, 2, "circular", 2))
    cases.append(OperatorCase("batch 8", 64, 256, 3, 2, "circular", 1, batch=8))
    return [c.shrunk() for c in cases] if quick else cases


@dataclass(frozen=True)
class ModelSetting:
    """How big the model benchmark is: the image side and the model overrides."""

    size: int
    overrides: dict = field(default_factory=dict)


def model_setting(name: str, quick: bool) -> ModelSetting:
    """512² images (the x4 SR model: 128² in, 512² out); --quick: 64² and small models."""
    if name not in MODEL_NAMES:
        raise ValueError(f"name must be one of {MODEL_NAMES}, got {name!r}")
    if not quick:
        return ModelSetting(512)
    small = {
        "converse_dncnn": {"num_blocks": 2, "num_features": 16},
        "converse_srresnet": {"num_blocks": 1, "num_features": 16},
        "conversenet": {"num_blocks": 1, "num_iterations": 2, "num_features": 16},
        "converse_usrnet": {"num_blocks": 1, "num_iterations": 2, "num_features": 16},
    }
    return ModelSetting(64, small[name])


@dataclass(frozen=True)
class TrainSetting:
    """Converse-DnCNN training benchmark: batch, patch side and model overrides."""

    batch: int
    patch: int
    overrides: dict = field(default_factory=dict)

    def describe(self) -> str:
        size = ", ".join(f"{k}={v}" for k, v in self.overrides.items()) or "paper size"
        return f"Converse-DnCNN ({size}), batch {self.batch} of 1×{self.patch}²"


def train_setting(quick: bool) -> TrainSetting:
    """Batch 8 of 64² patches with the paper's model; --quick: batch 2 of 32², 2 blocks."""
    if quick:
        return TrainSetting(2, 32, {"num_blocks": 2, "num_features": 16})
    return TrainSetting(8, 64)


TRAIN_VARIANTS = (
    ("float32", "float32", False),
    ("AMP bf16", "bfloat16", False),
    ("AMP fp16 + GradScaler", "float16", False),
    ("torch.compile", "float32", True),
    ("torch.compile + AMP bf16", "bfloat16", True),
)


@dataclass
class Row:
    """One line of the timings table (cells are already formatted strings)."""

    section: str
    case: str
    precision: str
    size: int | None = None
    ours: str = PENDING
    literal: str = PENDING
    speedup: str = PENDING
    peak: str = PENDING
    error: str = PENDING
    notes: str = ""
    timings: dict[str, Timing] = field(default_factory=dict)  # for the JSON records

    def cells(self) -> list[str]:
        return [
            self.section,
            self.case,
            self.precision,
            self.ours,
            self.literal,
            self.speedup,
            self.peak,
            self.error,
            self.notes,
        ]


@dataclass
class TestRun:
    """One pytest subprocess and its counts."""

    name: str
    args: list[str]
    counts: dict[str, int] | None = None
    seconds: float | None = None
    returncode: int | None = None
    problem: str = ""
    failures: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        if self.counts is None:
            problem = self.problem or "not run"
            return [self.name, *([problem] + ["—"] * 4), self._time(), self._rc()]
        keys = ("passed", "failed", "errors", "skipped", "deselected")
        return [self.name, *(str(self.counts[k]) for k in keys), self._time(), self._rc()]

    def _time(self) -> str:
        return "—" if self.seconds is None else f"{self.seconds:.1f}"

    def _rc(self) -> str:
        return "—" if self.returncode is None else str(self.returncode)


def render_report(
    header: dict[str, str], tests: list[TestRun], rows: list[Row], status: str
) -> str:
    """The whole Markdown report: header, test runs, the timings table."""
    out = ["# Converse2D GPU report", "", f"**Device:** {header['device']}", ""]
    out += [f"- {key}: {value}" for key, value in header.items() if key != "device"]
    out += ["", f"Status: {status}", "", "## Tests", ""]
    out.append(
        "pytest runs from the repository root. Only the cuda-marked tests use the device; "
        "the operator and model test files have no device parameter and run on the "
        "host CPU (on the device, the operator is checked by the rel. error column).\n"
    )
    out.append(markdown_table(TEST_COLUMNS, [t.cells() for t in tests]))
    failures = [f"- {t.name}: `{line}`" for t in tests for line in t.failures]
    if failures:
        out += ["Failures:", "", *failures, ""]
    out += ["## Timings", ""]
    out.append(
        "ours / literal: median time per call (operator, models) or training steps per "
        "second, with our Converse2D and with the paper's literal algorithm "
        "(`converse2d_literal`); speed-up: literal time / our time. Peak MiB (CUDA only): "
        "the most memory allocated during one call above what was allocated before it. "
        "Rel. error: largest difference from the same case in float64 on the same device, "
        "over the largest value (forward: the output; forward+backward: the input "
        "gradient). Autocast rows of the operator feed it an input in the autocast dtype, "
        "as a convolution inside autocast would.\n"
    )
    out.append(markdown_table(COLUMNS, [r.cells() for r in rows]))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# device, header, timing
# ---------------------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[gpu_report {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (
            f"{torch.cuda.get_device_name(device)} ({props.total_memory / 2**30:.0f} GiB, "
            f"compute capability {props.major}.{props.minor})"
        )
    return f"CPU: {cpu_name()} ({os.cpu_count()} logical cores)"


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_header(device: torch.device, args: argparse.Namespace, argv: Sequence[str]) -> dict:
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "device": device_name(device),
        "torch": torch.__version__,
        "CUDA": f"{torch.version.cuda or 'none'} (cuDNN {cudnn or 'none'})",
        "threads": str(torch.get_num_threads()),
        "TF32": (
            f"matmul {torch.backends.cuda.matmul.allow_tf32}, "
            f"cuDNN {torch.backends.cudnn.allow_tf32}"
        ),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "-m", "benchmarks.gpu_report", *argv]),
        "commit": git_commit(),
        "repeats": f"median of {args.repeats} after {args.warmup} warm-up call(s)",
        "python": platform.python_version(),
    }


def fill_timing(
    row: Row,
    ours: Timing | BaseException,
    literal: Timing | BaseException,
    device: torch.device,
    reference: torch.Tensor | None = None,
) -> None:
    """Fill the ours/literal/speed-up/peak/error cells from two ``interleave`` results."""
    row.timings = {k: r for k, r in (("ours", ours), ("literal", literal)) if isinstance(r, Timing)}

    def time_cell(r) -> str:
        return fmt_ms(r.seconds) if isinstance(r, Timing) else failed(r)

    def peak_cell(r) -> str:
        return f"{r.peak_mib:.0f}" if isinstance(r, Timing) and r.peak_mib is not None else "—"

    def error_cell(r) -> str:
        if not isinstance(r, Timing) or not isinstance(r.result, torch.Tensor):
            return "—"
        return f"{relative_error(r.result, reference):.1e}"

    row.ours, row.literal = time_cell(ours), time_cell(literal)
    row.speedup = fmt_speedup(
        ours.seconds if isinstance(ours, Timing) else None,
        literal.seconds if isinstance(literal, Timing) else None,
    )
    row.peak = (
        fmt_pair(peak_cell(ours), peak_cell(literal))
        if device.type == "cuda"
        else not_available("CUDA only")
    )
    if reference is None:
        row.error = not_available("no float64 reference")
    else:
        row.error = fmt_pair(error_cell(ours), error_cell(literal))


# ---------------------------------------------------------------------------------------
# sections (``after_case`` is called before every case: main writes the report there, so
# a run killed outright still leaves every finished case on disk)
# ---------------------------------------------------------------------------------------
def _nothing() -> None:
    pass


def plan_tests(quick: bool) -> list[TestRun]:
    """The pytest runs: the cuda-marked tests, the operator and the model test files."""
    operator = sorted(
        str(p.relative_to(REPO_ROOT))
        for pattern in ("tests/test_functional_*.py", "tests/test_layers_*.py")
        for p in REPO_ROOT.glob(pattern)
    )
    models = ["tests/models/test_forward.py", "tests/models/test_official.py"]
    cuda = ["tests"]
    if quick:  # a small subset: the file with the cuda tests, exactness, forward passes
        cuda = ["tests/test_functional_dtypes_devices.py"]
        operator = ["tests/test_functional_dtypes_devices.py", "tests/test_functional_exactness.py"]
        models = ["tests/models/test_forward.py"]
    return [
        TestRun(f"pytest -m cuda {' '.join(cuda)}", ["-m", "cuda", *cuda]),
        TestRun("operator tests" + (" (quick subset)" if quick else ""), operator),
        TestRun("model tests" + (" (quick subset)" if quick else ""), models),
    ]


def run_tests(
    runs: list[TestRun], timeout: float, after_case: Callable[[], None] = _nothing
) -> None:
    """Run each pytest invocation in a subprocess from the repository root."""
    for run in runs:
        after_case()
        log(f"tests: {run.name}")
        cmd = [sys.executable, "-m", "pytest", "-q", "--color=no", "-p", "no:cacheprovider"]
        start = time.perf_counter()
        try:
            result = subprocess.run(
                cmd + run.args,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            run.problem = f"failed: timed out after {timeout:.0f} s"
            run.seconds = time.perf_counter() - start
            continue
        except OSError as exc:
            run.problem = failed(exc)
            continue
        run.seconds = time.perf_counter() - start
        run.returncode = result.returncode
        run.failures = failure_lines(result.stdout)
        try:
            run.counts = parse_pytest_summary(result.stdout)
        except ValueError:
            tail = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
            run.problem = f"failed: no pytest summary ({tail[0][:100]})"


def plan_operator(quick: bool) -> list[tuple[OperatorCase, bool, str, Row]]:
    """Every operator case × (forward, forward+backward) × precision, with its row."""
    plan = []
    for case in operator_cases(quick):
        for backward in (False, True):
            mode = "forward+backward" if backward else "forward (filter cached)"
            for precision in PRECISIONS:
                label = precision if precision == "float32" else f"autocast {precision}"
                row = Row("operator", f"{case.describe()}, {mode}", label, case.size)
                plan.append((case, backward, precision, row))
    return plan


def run_operator(
    plan: list,
    device: torch.device,
    warmup: int,
    repeats: int,
    after_case: Callable[[], None] = _nothing,
) -> None:
    """Time every planned operator case and fill its row."""
    for case, backward, precision, row in plan:
        after_case()
        log(f"operator: {row.case}, {precision}")
        try:
            layer, x = converse2d_inputs(case, device)
            reference = float64_reference(case, layer, x, backward)
            calls = converse2d_calls(case, layer, x, backward, precision, device)
            res = harness.interleave(calls, repeats, warmup, device, keep_going=True)
            fill_timing(row, res["ours"], res["literal"], device, reference)
            if "functional" in res:
                r = res["functional"]
                row.notes = (
                    f"functional, filter rebuilt every call: {fmt_ms(r.seconds)}"
                    if isinstance(r, Timing)
                    else f"functional: {failed(r)}"
                )
        except Exception as exc:
            row.ours = row.literal = row.speedup = row.peak = row.error = "—"
            row.notes = failed(exc)
        finally:
            release(device)


def _official_weights(name: str) -> Path | None:
    """The official checkpoint in $CONVERSENET_WEIGHTS, if there (never downloads)."""
    folder = os.environ.get("CONVERSENET_WEIGHTS")
    info = get_model_info(name)
    if not folder or info.pretrained is None:
        return None
    path = Path(folder) / info.pretrained.filename
    return path if path.is_file() else None


def plan_models(quick: bool) -> list[tuple[str, ModelSetting, str, Row]]:
    """Every model × precision, with its row."""
    plan = []
    for name in MODEL_NAMES:
        setting = model_setting(name, quick)
        info = get_model_info(name)
        side = setting.size // info.scale
        case = f"{name} forward, 1×{info.in_channels}×{side}²"
        if info.scale > 1:
            case += f" → {setting.size}²"
        if setting.overrides:
            case += " (" + ", ".join(f"{k}={v}" for k, v in setting.overrides.items()) + ")"
        for precision in PRECISIONS:
            label = precision if precision == "float32" else f"autocast {precision}"
            plan.append((name, setting, precision, Row("models", case, label, setting.size)))
    return plan


def _perturb(model: torch.nn.Module) -> None:
    """Move random weights off their initial values (zero alphas make blocks identities)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _model_pair(name: str, setting: ModelSetting, device: torch.device):
    """Our model and its literal twin (eval mode), the inputs, the float64 output, notes."""
    info = get_model_info(name)
    torch.manual_seed(0)
    weights = None if setting.overrides else _official_weights(name)
    if weights is not None:
        model = create_model(name, weights=weights)
    else:
        model = create_model(name, **setting.overrides)
        _perturb(model)
    model.eval()
    switched = sum(isinstance(m, Converse2D) for m in model.modules())
    literal = use_literal_operator(copy.deepcopy(model)).to(device)
    model = model.to(device)
    side = setting.size // info.scale
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, info.in_channels, side, side, generator=gen).to(device)
    task = info.task == "deblur_nonblind"
    inputs = (x, gaussian_kernel(7).to(device), 1) if task else (x,)
    model64 = copy.deepcopy(model).double()
    with torch.no_grad():
        reference = model64(*(t.double() if isinstance(t, torch.Tensor) else t for t in inputs))
    del model64
    notes = f"weights: {'official' if weights else 'random'}; literal: {switched} Converse2D"
    notes += " layer(s) switched"
    if task:
        notes += "; the data step (per-sample kernels) is ours in both"
    return model, literal, inputs, reference, notes


def run_models(
    plan: list,
    device: torch.device,
    warmup: int,
    repeats: int,
    after_case: Callable[[], None] = _nothing,
) -> None:
    """Time the forward pass of every planned model case and fill its row."""
    built: dict[str, tuple] = {}
    for name, setting, precision, row in plan:
        after_case()
        log(f"models: {row.case}, {precision}")
        try:
            if name not in built:
                built.clear()
                release(device)
                built[name] = _model_pair(name, setting, device)
            ours, literal, inputs, reference, notes = built[name]

            def forward(model, inputs=inputs, precision=precision):
                def call():
                    with torch.no_grad(), autocast(device, precision):
                        return model(*inputs)

                return call

            calls = {"ours": forward(ours), "literal": forward(literal)}
            res = harness.interleave(calls, repeats, warmup, device, keep_going=True)
            fill_timing(row, res["ours"], res["literal"], device, reference)
            row.notes = notes
        except Exception as exc:
            row.ours = row.literal = row.speedup = row.peak = row.error = "—"
            row.notes = failed(exc)
            built.clear()
            release(device)
    built.clear()
    release(device)


def plan_training(quick: bool) -> list[tuple[str, bool, Row]]:
    """Every training variant (precision, compiled or not), with its row."""
    setting = train_setting(quick)
    case = setting.describe() + ", Adam + L1"
    return [
        (precision, compiled, Row("training", case, label, setting.patch))
        for label, precision, compiled in TRAIN_VARIANTS
    ]


def make_train_step(
    model: torch.nn.Module,
    precision: str,
    device: torch.device,
    noisy: torch.Tensor,
    clean: torch.Tensor,
) -> Callable[[], torch.Tensor]:
    """One training step (Adam, L1, autocast; float16 with a gradient scaler)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "float16")

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            out = model(noisy)
        loss = F.l1_loss(out.float(), clean)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()

    return step


def run_training(
    plan: list,
    device: torch.device,
    args: argparse.Namespace,
    after_case: Callable[[], None] = _nothing,
) -> None:
    """Time Converse-DnCNN training steps for every planned variant and fill its row."""
    setting = train_setting(args.quick)
    torch.manual_seed(0)
    base = create_model("converse_dncnn", **setting.overrides)
    _perturb(base)
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(setting.batch, 1, setting.patch, setting.patch, generator=gen)
    noisy = (clean + 25 / 255 * torch.randn(clean.shape, generator=gen)).to(device)
    clean = clean.to(device)
    skip_compile = None
    if args.no_compile:
        skip_compile = "--no-compile"
    elif args.quick and device.type == "cpu" and not args.compile:
        skip_compile = "skipped in --quick on the CPU"
    eager: dict[str, float] = {}  # seconds per step of eager ours, by precision
    for precision, compiled, row in plan:
        after_case()
        log(f"training: {row.precision}")
        row.error = not_available("timing only")
        if compiled and skip_compile:
            row.ours = row.literal = row.speedup = row.peak = not_available(skip_compile)
            continue
        try:
            models = {"ours": copy.deepcopy(base).to(device).train()}
            if not compiled:
                models["literal"] = use_literal_operator(copy.deepcopy(base)).to(device).train()
            steps = {}
            for key, model in models.items():
                run = model
                if compiled:
                    torch._dynamo.reset()
                    run = torch.compile(model)
                steps[key] = make_train_step(run, precision, device, noisy, clean)
            notes = []
            if compiled:  # the first calls compile forward and backward: time them apart
                start = time.perf_counter()
                for _ in range(2):
                    steps["ours"]()
                sync(device)
                notes.append(f"first 2 steps (compiling) {time.perf_counter() - start:.1f} s")
            res = harness.interleave(steps, args.repeats, args.warmup, device, keep_going=True)
            ours, literal = res["ours"], res.get("literal")
            row.timings = {k: r for k, r in res.items() if isinstance(r, Timing)}
            row.ours = fmt_rate(1 / ours.seconds) if isinstance(ours, Timing) else failed(ours)
            if compiled:
                row.literal = row.speedup = not_available("torch.compile timed for ours only")
                if isinstance(ours, Timing) and precision in eager:
                    notes.append(f"{eager[precision] / ours.seconds:.2f}× eager ours ({precision})")
            else:
                row.literal = (
                    fmt_rate(1 / literal.seconds)
                    if isinstance(literal, Timing)
                    else failed(literal)
                )
                row.speedup = fmt_speedup(
                    ours.seconds if isinstance(ours, Timing) else None,
                    literal.seconds if isinstance(literal, Timing) else None,
                )
                if isinstance(ours, Timing):
                    eager[precision] = ours.seconds
            if device.type == "cuda":
                row.peak = fmt_pair(
                    *(
                        f"{r.peak_mib:.0f}" if isinstance(r, Timing) else ("—" if r else "n/a")
                        for r in (ours, literal)
                    )
                )
            else:
                row.peak = not_available("CUDA only")
            losses = [
                f"{key} {float(r.result):.4f}"
                for key, r in res.items()
                if isinstance(r, Timing) and r.result is not None
            ]
            if losses:
                notes.append("last warm-up loss " + ", ".join(losses))
            row.notes = "; ".join(notes)
        except Exception as exc:
            row.ours = row.literal = row.speedup = row.peak = "—"
            row.notes = failed(exc)
        finally:
            torch._dynamo.reset()
            release(device)


# ---------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = harness.Parser(__doc__, __spec__.name, repeats=None, warmup=None, threads=(None, 1))
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--out", type=Path, default=None, help="Markdown file (else stdout)")
    compile_ = parser.add_mutually_exclusive_group()
    compile_.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    compile_.add_argument(
        "--compile", action="store_true", help="run the torch.compile rows even in CPU --quick"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed calls per variant (CPU 5, CUDA 10)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed calls first (CPU 1, CUDA 3)"
    )
    parser.add_argument(
        "--test-timeout", type=float, default=None, help="seconds per pytest run (600; quick 180)"
    )
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        parser.error(f"--sections takes a subset of {','.join(SECTIONS)}, got {args.sections!r}")
    args.sections = [s for s in SECTIONS if s in sections]
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(
            "--device cuda needs a CUDA device, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
            "use --device cpu to rehearse"
        )
    on_cpu = args.device == "cpu"
    if args.repeats is None:
        args.repeats = 1 if args.quick else (5 if on_cpu else 10)
    if args.warmup is None:
        args.warmup = 1 if args.quick or on_cpu else 3
    if args.repeats < 1 or args.warmup < 1:
        parser.error(f"--repeats and --warmup must be >= 1, got {args.repeats}, {args.warmup}")
    if args.test_timeout is None:
        args.test_timeout = 180.0 if args.quick else 600.0
    return args


def write_records(path: Path | None, rows: list[Row], device: torch.device) -> None:
    """The timed rows as JSON records (``--json``): one per row and implementation."""
    results = harness.Results("gpu_report")
    for row in rows:
        for impl, timing in row.timings.items():
            results.add(
                row.case, impl, size=row.size, timing=timing, section=row.section,
                precision=row.precision, device=str(device),
            )  # fmt: skip
    results.write_json(path)


def _on_sigterm(signum, frame) -> None:
    raise Interrupted(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; returns 0 when every section ran (cases may still have failed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    device = torch.device(args.device)
    header = make_header(device, args, argv)
    if args.quick:
        header["mode"] = "--quick: small sizes (stated per case), not the issue's sizes"
    tests = plan_tests(args.quick) if "tests" in args.sections else []
    op_plan = plan_operator(args.quick) if "operator" in args.sections else []
    model_plan = plan_models(args.quick) if "models" in args.sections else []
    train_plan = plan_training(args.quick) if "training" in args.sections else []
    rows = [p[-1] for p in (*op_plan, *model_plan, *train_plan)]

    def report(status: str) -> None:
        if args.out is not None:
            write_atomic(args.out, render_report(header, tests, rows, status))

    section = "nothing"

    def progress() -> None:
        report(f"partial: running {section} (done: {', '.join(done) or 'nothing yet'})")

    runners = {
        "tests": lambda: run_tests(tests, args.test_timeout, progress),
        "operator": lambda: run_operator(op_plan, device, args.warmup, args.repeats, progress),
        "models": lambda: run_models(model_plan, device, args.warmup, args.repeats, progress),
        "training": lambda: run_training(train_plan, device, args, progress),
    }
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    done: list[str] = []
    status, code = "complete", 0
    start = time.perf_counter()
    try:
        for section in args.sections:  # progress() reads section
            progress()
            log(f"section {section}")
            runners[section]()
            done.append(section)
    except (Interrupted, KeyboardInterrupt) as exc:
        status = f"interrupted ({exc or 'Ctrl-C'}) after {', '.join(done) or 'no section'}"
        code = 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    header["wall time"] = f"{time.perf_counter() - start:.0f} s"
    text = render_report(header, tests, rows, status)
    if args.out is None:
        print(text)
    else:
        write_atomic(args.out, text)
        log(f"wrote {args.out} ({status})")
    write_records(args.json, rows, device)
    return code


if __name__ == "__main__":
    sys.exit(main())
