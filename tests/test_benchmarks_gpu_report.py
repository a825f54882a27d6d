"""benchmarks/gpu_report.py: its helpers, and the CPU rehearsal (``--device cpu --quick``)."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "gpu_report.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gr = _load()

# a time ("1.23 ms"), a rate ("4.56 steps/s"), a ratio ("3.10×"), a pair of numbers
# ("5.7e-07 / 9.9e-05"), or an explicit "n/a (reason)"
NUMBER = r"\d+(\.\d+)?(e[-+]\d+)?"
TIME_OR_RATE = re.compile(rf"^{NUMBER} (ms|steps/s)$|^n/a \(.+\)$")
SPEEDUP = re.compile(rf"^{NUMBER}×$|^n/a \(.+\)$")
PAIR = re.compile(rf"^({NUMBER}|—) / ({NUMBER}|—)$|^n/a \(.+\)$")


def table_rows(text: str, header: str) -> list[list[str]]:
    """The data rows of the Markdown table whose header line starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


# --------------------------------------------------------------------------------------
# pure helpers
# --------------------------------------------------------------------------------------
def test_markdown_table_escapes_pipes_and_checks_the_width():
    table = gr.markdown_table(["a", "b"], [["1", "x|y"], ["2", "two\nlines"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |", "| 2 | two lines |"]
    with pytest.raises(ValueError, match=r"row 1 has 3 cells, expected 2"):
        gr.markdown_table(["a", "b"], [["1", "2"], ["1", "2", "3"]])


def test_cell_formats():
    assert gr.fmt_ms(0.0123) == "12.3 ms"
    assert gr.fmt_ms(0.000456) == "0.456 ms"
    assert gr.fmt_ms(2.5) == "2500 ms"
    assert gr.fmt_rate(12.345) == "12.3 steps/s"
    assert gr.fmt_speedup(0.01, 0.05) == "5.00×"
    assert gr.fmt_speedup(None, 0.05) == "n/a (no time for ours)"
    assert gr.fmt_speedup(0.01, None) == "n/a (no time for literal)"
    with pytest.raises(ValueError, match=r"ours_s must be > 0 seconds, got 0"):
        gr.fmt_speedup(0.0, 1.0)
    assert gr.not_available("CUDA only") == "n/a (CUDA only)"


def test_short_reason_keeps_the_type_and_first_line():
    exc = RuntimeError("cuFFT only supports powers of two\nsecond line")
    assert gr.failed(exc) == "failed: RuntimeError: cuFFT only supports powers of two"
    long = gr.short_reason(ValueError("x" * 500), limit=40)
    assert len(long) == 40 and long.startswith("ValueError: xxx") and long.endswith("…")
    assert gr.short_reason(KeyError()) == "KeyError"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("...\n585 passed, 7 skipped, 2 deselected, 1 warning in 3.17s\n", (585, 0, 0, 7, 2)),
        ("7 skipped, 1004 deselected in 4.52s", (0, 0, 0, 7, 1004)),
        ("FAILED tests/x.py::t - 1 passed\n1 failed, 2 passed, 1 error in 3.00s", (2, 1, 1, 0, 0)),
        ("=========== 3 passed, 2 errors in 0.50s ===========", (3, 0, 2, 0, 0)),
        ("no tests ran in 0.01s", (0, 0, 0, 0, 0)),
    ],
)
def test_parse_pytest_summary(output, expected):
    counts = gr.parse_pytest_summary(output)
    keys = ("passed", "failed", "errors", "skipped", "deselected")
    assert tuple(counts[k] for k in keys) == expected


def test_parse_pytest_summary_without_a_summary_raises():
    with pytest.raises(ValueError, match="no pytest summary line"):
        gr.parse_pytest_summary("ERROR: file or directory not found: tests/nope.py\n")


def test_failure_lines_are_listed_and_capped():
    output = "\n".join(f"FAILED tests/t.py::test_{i} - AssertionError" for i in range(5))
    output += "\nERROR tests/u.py - ImportError\nother line"
    lines = gr.failure_lines(output, limit=3)
    assert lines[:3] == [f"FAILED tests/t.py::test_{i} - AssertionError" for i in range(3)]
    assert lines[3] == "... and 3 more"


def test_operator_cases_cover_the_issue_sizes():
    from bench_converse2d import CASES  # the script put benchmarks/ on sys.path

    full = gr.operator_cases(quick=False)
    shapes = {(c.batch, c.channels, c.size, c.scale) for c in full}
    assert {(1, c.channels, c.size, c.scale) for c in CASES} <= shapes
    assert (1, 64, 128, 2) in shapes and (8, 64, 256, 1) in shapes
    assert {c.scale for c in full} == {1, 2}
    quick = gr.operator_cases(quick=True)
    assert len(quick) == len(full)
    for small, big in zip(quick, full, strict=True):
        assert small.batch * small.channels * small.size**2 < big.batch * big.channels * big.size**2
        assert "quick" in small.describe()
        layer, x = gr._op_inputs(small, torch.device("cpu"))  # valid Converse2D inputs
        with torch.no_grad():
            out = layer(x)
        assert out.shape[-1] == small.scale * small.size


def test_model_and_training_settings():
    for name in gr.MODEL_NAMES:
        assert gr.model_setting(name, quick=False) == gr.ModelSetting(512)
        quick = gr.model_setting(name, quick=True)
        assert quick.size < 512 and quick.overrides
    with pytest.raises(ValueError, match=r"name must be one of .*, got 'dncnn'"):
        gr.model_setting("dncnn", quick=False)
    assert gr.train_setting(quick=False) == gr.TrainSetting(8, 64)
    assert "batch 2 of 1×32²" in gr.train_setting(quick=True).describe()


def test_plans_have_one_row_per_case():
    ops = gr.plan_operator(quick=True)
    assert len(ops) == len(gr.operator_cases(True)) * 2 * len(gr.PRECISIONS)
    assert len(gr.plan_models(quick=True)) == len(gr.MODEL_NAMES) * len(gr.PRECISIONS)
    assert len(gr.plan_training(quick=True)) == len(gr.TRAIN_VARIANTS)
    cases = [(row.case, row.precision) for *_, row in ops]
    assert len(set(cases)) == len(cases)


def test_time_variants_records_a_failure_and_keeps_the_rest():
    calls = {"ours": lambda: torch.ones(3), "literal": lambda: 1 / 0}
    res = gr.time_variants(calls, torch.device("cpu"), warmup=1, repeats=2)
    assert isinstance(res["ours"], gr.Timing) and res["ours"].seconds >= 0
    assert isinstance(res["literal"], ZeroDivisionError)
    row = gr.Row("operator", "case", "float32")
    gr.fill_timing(row, res["ours"], res["literal"], torch.device("cpu"), torch.ones(3))
    assert row.ours.endswith(" ms")
    assert row.literal == "failed: ZeroDivisionError: division by zero"
    assert row.speedup == "n/a (no time for literal)"
    assert row.peak == "n/a (CUDA only)"
    assert row.error == "0.0e+00 / —"


def test_fill_timing_on_cuda_reports_the_memory_peaks():
    """The CUDA cells, from made-up results (no device needed to format them)."""
    ours = gr.Timing(0.002, 12.4, torch.tensor([1.0, 2.0]))
    literal = gr.Timing(0.010, 300.0, torch.tensor([1.0, 2.2]))
    row = gr.Row("operator", "case", "autocast float16")
    gr.fill_timing(row, ours, literal, torch.device("cuda"), torch.tensor([1.0, 2.0]))
    assert (row.ours, row.literal, row.speedup) == ("2 ms", "10 ms", "5.00×")
    assert row.peak == "12 / 300"
    assert row.error == "0.0e+00 / 1.0e-01"
    gr.fill_timing(row, ours, RuntimeError("cuFFT ... powers of two"), torch.device("cuda"))
    assert row.peak == "12 / —"
    assert row.literal == "failed: RuntimeError: cuFFT ... powers of two"
    assert row.error == "n/a (no float64 reference)"


def test_render_report_and_atomic_write(tmp_path):
    rows = [gr.Row("operator", "a case", "float32", notes="n")]
    run = gr.TestRun("pytest -m cuda tests", [], {k: 1 for k in gr._SUMMARY_KEYS}, 2.0, 0)
    run.failures = ["FAILED tests/x.py::t"]
    header = {"device": "Some GPU", "torch": "x"}
    text = gr.render_report(header, [run, gr.TestRun("other", [])], rows, "complete")
    assert "**Device:** Some GPU" in text and "Status: complete" in text
    assert table_rows(text, "| test run")[1][1] == "not run"
    assert table_rows(text, "| section")[0][3] == gr.PENDING
    assert "- pytest -m cuda tests: `FAILED tests/x.py::t`" in text
    out = tmp_path / "sub" / "report.md"
    gr.write_atomic(out, text)
    assert out.read_text(encoding="utf-8") == text
    assert [p.name for p in out.parent.iterdir()] == ["report.md"]  # no temporary left


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_a_device_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        gr.main(["--device", "cuda", "--quick"])
    assert info.value.code == 2
    assert "--device cuda needs a CUDA device" in capsys.readouterr().err


def test_bad_sections_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        gr.main(["--device", "cpu", "--sections", "operator,bogus"])
    assert info.value.code == 2
    assert "--sections takes a subset of tests,operator,models,training" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# the script end to end
# --------------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT / "src"), env.get("PYTHONPATH")])
    )
    return env


def test_cpu_quick_rehearsal_writes_a_complete_report(tmp_path):
    """The rehearsal the README quotes: exit code 0 and a full, well-formed table."""
    out = tmp_path / "report.md"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)]
    result = subprocess.run(
        cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[gpu_report" in result.stderr  # progress goes to stderr
    text = out.read_text(encoding="utf-8")
    assert re.search(r"^\*\*Device:\*\* CPU: .+$", text, re.M)
    assert "Status: complete" in text
    for key in ("torch", "CUDA", "threads", "date", "command"):
        assert re.search(rf"^- {key}: .+$", text, re.M), key

    tests = table_rows(text, "| test run")
    assert [r[0] for r in tests] == [t.name for t in gr.plan_tests(quick=True)]
    for name, passed, failed, errors, skipped, *_, rc in tests:
        assert (failed, errors, rc) == ("0", "0", "0"), name
        assert int(passed) + int(skipped) > 0, name
    assert int(tests[0][4]) > 0  # the cuda tests are skipped on the CPU, and say so

    rows = table_rows(text, "| section")
    expected = [
        (row.section, row.case, row.precision)
        for *_, row in (
            *gr.plan_operator(True),
            *gr.plan_models(True),
            *gr.plan_training(True),
        )
    ]
    assert [tuple(r[:3]) for r in rows] == expected
    for row in rows:
        ours, literal, speedup, peak, error = row[3:8]
        assert TIME_OR_RATE.match(ours), row
        assert TIME_OR_RATE.match(literal), row
        assert SPEEDUP.match(speedup), row
        skipped = ours == "n/a (skipped in --quick on the CPU)"
        assert peak == (ours if skipped else "n/a (CUDA only)"), row
        assert PAIR.match(error), row
        assert "failed" not in " ".join(row), row  # everything runs on the CPU
    compiled = [r for r in rows if r[2].startswith("torch.compile")]
    assert compiled and all(r[3] == "n/a (skipped in --quick on the CPU)" for r in compiled)
    timed = [r for r in rows if r[3].endswith(" ms")]
    assert len(timed) == len(gr.plan_operator(True)) + len(gr.plan_models(True))
    float32 = [r for r in rows if r[0] == "operator" and r[2] == "float32"]
    for r in float32:  # float32 is accurate: our relative error is below 1e-4
        assert float(r[7].split(" / ")[0]) < 1e-4, r


def test_sigterm_leaves_a_partial_report(tmp_path):
    out = tmp_path / "report.md"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out)]
    cmd += ["--sections", "operator,models"]
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.exists(), "the report is written before the first section"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err.decode()[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "Status: interrupted" in text
    rows = table_rows(text, "| section")
    assert len(rows) == len(gr.plan_operator(True)) + len(gr.plan_models(True))
    assert rows[-1][3] == gr.PENDING


@pytest.mark.slow
def test_cpu_quick_compile_rows(tmp_path):
    """The torch.compile rows, which --quick skips on the CPU (inductor builds C++: minutes)."""
    out = tmp_path / "report.md"
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--compile"]
    cmd += ["--sections", "training", "--out", str(out)]
    result = subprocess.run(
        cmd, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = table_rows(out.read_text(encoding="utf-8"), "| section")
    compiled = [r for r in rows if r[2].startswith("torch.compile")]
    assert len(compiled) == 2
    for row in compiled:
        assert re.match(rf"^{NUMBER} steps/s$", row[3]), row
        assert re.search(rf"first 2 steps \(compiling\) {NUMBER} s; {NUMBER}× eager ours", row[8])
