"""The benchmarks: every script answers ``--help`` and runs its ``--quick`` mode (so that a
moved or renamed library name fails here), the harness's timer, memory probe, parser and
records, the switches of ``benchmarks/internals.py``, and gpu_report's pieces.

The quick runs are smoke runs (tiny sizes, one repeat, one thread): their figures mean
nothing, so they are checked for shape (the rows, finite positive times) and for what
must hold at any size (our operator agrees with float64, two paths agree).
"""

from __future__ import annotations

import importlib
import json
import math
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time

import ducc0.fft
import numpy as np
import pytest
import scipy.fft
import torch

import benchmarks
import conversenet.functional as CF
import conversenet.operator.layers as operator_layers
from benchmarks import bench_fft, harness, internals
from benchmarks import gpu_report as gr
from benchmarks.cases import CONVERSE2D_CASES, converse2d_inputs
from conversenet import Converse2D, create_model
from conversenet.runner import ModelRunner

from conftest import REPO_ROOT, need_shared

HELPERS = {"__init__", "harness", "cases", "internals"}
LINUX = os.path.exists("/proc/self/clear_refs")  # where the peak RSS can be reset


# --------------------------------------------------------------------------------------
# every script: --help and --quick
# --------------------------------------------------------------------------------------
def test_every_script_is_listed_and_tested():
    found = {p.stem for p in (REPO_ROOT / "benchmarks").glob("*.py")} - HELPERS
    assert found == set(benchmarks.SCRIPTS)
    assert set(QUICK) == set(benchmarks.SCRIPTS)


@pytest.mark.parametrize("name", benchmarks.SCRIPTS)
def test_help(name, capsys):
    module = importlib.import_module(f"benchmarks.{name}")
    with pytest.raises(SystemExit) as info:
        module.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m benchmarks.{name}")
    assert module.__doc__.splitlines()[0] in out
    assert "--quick" in out and "--json PATH" in out


def test_scripts_run_as_modules_from_the_repository_root():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    cmd = [sys.executable, "-m", "benchmarks.bench_fft", "--help"]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: python -m benchmarks.bench_fft")


def _check_converse2d(records, out, folder):
    assert [(r["case"], r["variant"]) for r in records] == [
        (f"{c.name} (quick)", v)
        for c in CONVERSE2D_CASES
        for v in (("literal", "ours") if c.training else ("literal", "ours", "functional"))
    ]
    for r in records:  # (the memory runs are left out: see the next test)
        assert r["peak_mib"] is None
        if r["variant"] != "literal":
            assert r["rel_error"] < 1e-5, r  # float32 against float64
    assert out.count("| inference s=1 (quick) |") == 2


def _check_reverse_conv(records, out, folder):
    assert len(records) == 17
    for r in records:
        assert r["rel_error"] < (1e-2 if r["variant"] == "literal" else 1e-5), r
    assert {r["shape"] for r in records if r["case"] == "3-D s=2"} == {"8x8x8"}


def _check_fft(records, out, folder):
    variants = bench_fft.VARIANTS
    transforms = [(c, v) for c in ("rfft2 8x28²", "irfft2 8x28²") for v in variants]
    forward = [("Converse-DnCNN forward 16²", v) for v in ("PyTorch", "pocketfft", "ducc0")]
    assert [(r["case"], r["variant"]) for r in records] == transforms + forward


def _check_srresnet(records, out, folder):
    assert [(r["case"], r["variant"]) for r in records] == [
        (c, v) for c in ("inference 1x3x8²", "training 4x3x8²") for v in ("before", "after")
    ]
    for r in records:  # the spatial path and the FFT path compute the same
        assert r["max_abs_difference"] < 1e-4, r


def _check_training(records, out, folder):
    assert [r["variant"] for r in records] == ["ours", "literal"]
    assert records[0]["grad_rel_diff"] < 1e-8
    assert records[0]["process_peak_mib"] > 0
    assert "speed-up" in out


def _check_set12(records, out, folder):
    ours = [r for r in records if r["variant"] == "ours" and r["case"] != "whole set"]
    literal = [r for r in records if r["variant"] == "literal"]
    assert [r["case"] for r in ours] == ["01.png", "02.png"] and len(literal) == 1
    assert round(literal[0]["psnr"], 2) == round(ours[0]["psnr"], 2)
    assert 20 < ours[0]["psnr"] < 40
    assert records[-1]["case"] == "whole set" and records[-1]["process_peak_mib"] > 0
    assert "PSNRs identical to 0.01 dB: True" in out


def _check_vs_upstream(records, out, folder):
    assert [(r["variant"], r["size"]) for r in records] == [("ours", 32), ("literal", 32)]
    assert "upstream column left out: give --upstream DIR" in out
    assert all(r["peak_mib"] >= 0 if LINUX else r["peak_mib"] is None for r in records)
    errors = re.search(r"ours \(float32\) ([\d.e+-]+), literal \(float32\) ([\d.e+-]+)", out)
    assert float(errors[1]) < float(errors[2])  # ours is the more accurate in float32


def _check_tiling(records, out, folder):
    memory, *psnr = records
    assert memory["exit_code"] == 0 and memory["output_written"] is True
    assert memory["tiles"] > memory["model_tiles"] == 2
    assert memory["process_peak_mib"] > 50
    assert psnr and all(r["psnr_tiled_vs_untiled"] > 30 for r in psnr)


def _check_onnx(records, out, folder):
    assert [(r["size"], r["variant"]) for r in records] == [
        (32, "pytorch"), (32, "onnxruntime"), (48, "pytorch"), (48, "onnxruntime"),
        (48, "pytorch, 32 tiles"), (48, "onnxruntime, 32 tiles"),
    ]  # fmt: skip
    assert records[1]["max_abs_diff"] < 1e-4 and records[3]["max_abs_diff"] < 1e-4
    assert "onnxruntime vs PyTorch on the same tiles" in out


def _check_onnx_accuracy(records, out, folder):
    assert [r["case"] for r in records] == ["Converse2D s=2 circular", "converse_dncnn (small)"]
    assert all(r["max_abs_diff"] < 1e-4 for r in records)


def _check_checkerboard(records, out, folder):
    methods = [r["case"] for r in records[:-2:2]]
    assert methods == list(importlib.import_module("benchmarks.bench_checkerboard").METHODS)
    assert [r["variant"] for r in records[:-2]] == ["init", "fit"] * len(methods)
    assert all(math.isfinite(r["psnr"]) for r in records[:-2])
    assert "| (bicubic) |" in out


def _check_gpu_report(records, out, folder):
    """The JSON records and the Markdown report of the CPU rehearsal."""
    plan = [*gr.plan_operator(True), *gr.plan_models(True), *gr.plan_training(True)]
    eager = [p[-1] for p in plan if not p[-1].precision.startswith("torch.compile")]
    assert len(records) == 2 * len(eager)
    assert {r["variant"] for r in records} == {"ours", "literal"}
    text = (folder / "report.md").read_text(encoding="utf-8")
    assert re.search(r"^\*\*Device:\*\* CPU: .+$", text, re.M)
    assert "Status: complete" in text
    for key in ("torch", "CUDA", "threads", "date", "command"):
        assert re.search(rf"^- {key}: .+$", text, re.M), key
    rows = table_rows(text, "| section")
    assert [tuple(r[:3]) for r in rows] == [
        (p[-1].section, p[-1].case, p[-1].precision) for p in plan
    ]
    for row in rows:
        ours, literal, speedup, peak, error = row[3:8]
        assert TIME_OR_RATE.match(ours) and TIME_OR_RATE.match(literal), row
        assert SPEEDUP.match(speedup) and PAIR.match(error), row
        skipped = ours == "n/a (skipped in --quick on the CPU)"
        assert peak == (ours if skipped else "n/a (CUDA only)"), row
        assert "failed" not in " ".join(row), row  # everything runs on the CPU
    compiled = [r for r in rows if r[2].startswith("torch.compile")]
    assert compiled and all(r[3] == "n/a (skipped in --quick on the CPU)" for r in compiled)
    for r in rows:
        if r[0] == "operator" and r[2] == "float32":  # our float32 is accurate
            assert float(r[7].split(" / ")[0]) < 1e-4, r


def _check_export(records, out, folder):
    """The real command exported the model, and onnxruntime agreed with PyTorch."""
    (record,) = records
    assert record["case"] == "converse_srresnet_compact" and record["mib"] > 0
    assert 0 < record["export"] <= record["wall"], record
    assert float(record["error"]) < 1e-4, record
    assert "| converse_srresnet_compact |" in out


def _check_photo(records, out, folder):
    """The real command restored the 4:2:0 JPEG by its default route."""
    (record,) = records
    assert record["variant"] == "default" and record["exit_code"] == 0, record
    assert record["output_written"] and record["peak_mib"] > 0, record
    assert "| jpg | default |" in out


# script: (argv after --quick, shared data needed, check of the records and stdout)
QUICK = {
    "bench_converse2d": (["--no-memory"], None, _check_converse2d),
    "bench_reverse_conv": ([], None, _check_reverse_conv),
    "bench_fft": ([], None, _check_fft),
    "bench_srresnet": ([], None, _check_srresnet),
    "bench_training": ([], None, _check_training),
    "bench_dncnn_set12": ([], ("data", "Set12"), _check_set12),
    "bench_vs_upstream": ([], None, _check_vs_upstream),
    "bench_tiling": (["--memory", "--psnr"], None, _check_tiling),
    "bench_onnx": ([], None, _check_onnx),
    "bench_export": ([], None, _check_export),
    "bench_photo": ([], None, _check_photo),
    "onnx_accuracy": ([], None, _check_onnx_accuracy),
    "bench_checkerboard": ([], None, _check_checkerboard),
    "gpu_report": (
        ["--device", "cpu", "--sections", "operator,models,training"],
        None,
        _check_gpu_report,
    ),
}


@pytest.mark.parametrize("name", benchmarks.SCRIPTS)
def test_quick_run(name, tmp_path, capsys):
    argv, shared, check = QUICK[name]
    if shared:
        need_shared(*shared)
        need_shared("weights", "official", "converse_dncnn.pth")
    path = tmp_path / "rows.json"
    if name == "gpu_report":
        argv = [*argv, "--out", str(tmp_path / "report.md")]
    module = importlib.import_module(f"benchmarks.{name}")
    assert module.main(["--quick", *argv, "--json", str(path)]) == 0
    out = capsys.readouterr().out
    records = json.loads(path.read_text())
    assert records and all(r["benchmark"] == name for r in records)
    for r in records:
        assert {"case", "variant", "size", "peak_mib", "torch", "load_1min"} <= set(r), r
        assert r["threads"] == 1 and r["torch"] == torch.__version__
        for key in ("seconds", "seconds_min", "seconds_max", "cpu_seconds"):
            if key in r:
                assert math.isfinite(r[key]) and r[key] >= 0, r
        if "repeats" in r:
            assert 0 < r["seconds_min"] <= r["seconds"] <= r["seconds_max"], r
    check(records, out, tmp_path)


# --------------------------------------------------------------------------------------
# the harness
# --------------------------------------------------------------------------------------
def test_interleave_runs_the_variants_in_turn_after_their_warmup():
    order = []
    calls = {name: (lambda name=name: order.append(name) or name) for name in ("a", "b")}
    times = harness.interleave(calls, repeats=2, warmup=1)
    assert order == ["a", "b", "a", "b", "a", "b"]
    for name, timing in times.items():
        assert len(timing.wall) == len(timing.cpu) == 2 and timing.result == name
        assert min(timing.wall) <= timing.seconds <= max(timing.wall)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        harness.interleave(calls, repeats=0)


def test_interleave_keeps_going_past_a_failing_variant():
    calls = {"ours": lambda: torch.ones(3), "literal": lambda: 1 / 0}
    with pytest.raises(ZeroDivisionError):
        harness.interleave(calls, repeats=1)
    res = harness.interleave(calls, repeats=2, keep_going=True)
    assert isinstance(res["literal"], ZeroDivisionError)
    assert isinstance(res["ours"], harness.Timing) and len(res["ours"].wall) == 2


def allocate_child(mib: int) -> dict:
    """(In a fresh process) the peak RSS rise of writing a new ``mib`` MiB array."""
    return {"rise": harness.peak_rise_mib(lambda: np.ones(mib * 2**17).sum())}


@pytest.mark.skipif(not LINUX, reason="Linux only")
def test_peak_rise_in_a_fresh_process_sees_a_new_allocation():
    # the resident set also holds file-backed pages (the libraries' code), which the kernel
    # may drop during the call: the rise can fall a few pages short of the 64 MiB written
    assert 63 <= harness.in_fresh_process(allocate_child, mib=64)["rise"] < 100


@pytest.mark.skipif(not LINUX, reason="Linux only")
def test_bench_converse2d_memory_run():
    bc = importlib.import_module("benchmarks.bench_converse2d")
    found = harness.in_fresh_process(
        bc.memory_child, case=1, variant="literal", warmup=1, threads=1, quick=True
    )
    assert 1 < found["peak_mib"] < 100  # (a few MiB for these sizes)


def failing_child() -> dict:
    raise KeyError("no such case")


def test_a_failure_in_a_fresh_process_is_reported_with_its_traceback(monkeypatch):
    fork = multiprocessing.get_context("fork")  # (a cheap child for the error path)
    monkeypatch.setattr(harness.multiprocessing, "get_context", lambda method: fork)
    with pytest.raises(RuntimeError, match=r"(?s)failing_child failed.*KeyError: 'no such case'"):
        harness.in_fresh_process(failing_child)


def test_parser_quick_defaults_and_explicit_values():
    def parse(*argv):
        parser = harness.Parser("doc", "benchmarks.bench_x", repeats=(5, 1), threads=(None, 1))
        parser.option("--sizes", [256, 512], [32], type=int, nargs="+", help="sides")
        return parser.parse_args(argv)

    threads = torch.get_num_threads()
    try:
        normal = parse()
        assert (normal.repeats, normal.warmup, normal.sizes, normal.threads) == (
            5,
            1,
            [256, 512],
            None,
        )
        quick = parse("--quick", "--sizes", "64")
        assert (quick.repeats, quick.sizes, quick.threads, quick.benchmark) == (
            1,
            [64],
            1,
            "bench_x",
        )
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(SystemExit):
        parse("--repeats", "0")


def test_choose_cases():
    assert harness.choose("abc", "all") == ["a", "b", "c"]
    assert harness.choose("abc", "3,1") == ["c", "a"]
    for bad in ("0", "4", "x", ""):
        with pytest.raises(ValueError, match="--cases takes 'all' or numbers from 1 to 3"):
            harness.choose("abc", bad)


def test_markdown_table_escapes_pipes_and_checks_the_width():
    table = harness.markdown_table(["a", "b"], [["1", "x|y"], ["2", "two\nlines"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x\\|y |", "| 2 | two lines |"]
    with pytest.raises(ValueError, match=r"row 1 has 3 cells, expected 2"):
        harness.markdown_table(["a", "b"], [["1", "2"], ["1", "2", "3"]])


def test_records_are_flat_and_written_atomically(tmp_path):
    results = harness.Results("bench_x")
    base = harness.Timing([0.4, 0.2, 0.3], [0.2, 0.2, 0.2])
    ours = harness.Timing([0.1, 0.3, 0.2], [0.1, 0.1, 0.1])
    results.add("c", "ours", size=64, timing=ours, baseline=base, peak_mib=5.0, db=-math.inf)
    path = tmp_path / "sub" / "rows.json"
    results.write_json(path)
    (record,) = json.loads(path.read_text())
    assert (
        record["seconds"] == 0.2 and record["seconds_min"] == 0.1 and record["seconds_max"] == 0.3
    )
    assert record["speedup"] == pytest.approx(1.5) and record["speedup_cpu"] == pytest.approx(2)
    assert (record["size"], record["peak_mib"], record["repeats"], record["db"]) == (
        64,
        5.0,
        3,
        "-inf",
    )
    assert all(not isinstance(v, (dict, list)) for v in record.values())
    assert [p.name for p in path.parent.iterdir()] == ["rows.json"]  # no temporary left


# --------------------------------------------------------------------------------------
# the switches of benchmarks/internals.py take effect (they patch the module that calls)
# --------------------------------------------------------------------------------------
def test_fft_path_only_switches_the_spatial_path_off_and_back(monkeypatch):
    """Inside the switch a k = 2, s = 2 layer builds a spectral filter; outside it does not."""
    calls = []
    original = operator_layers.converse_filter
    monkeypatch.setattr(
        operator_layers, "converse_filter", lambda *a: calls.append(1) or original(*a)
    )
    layer = Converse2D(2, 2, 2, scale=2).eval()
    x = torch.rand(1, 2, 6, 6)
    with torch.no_grad():
        spatial = layer(x)
        assert calls == []
        with internals.fft_path_only():
            fft = layer(x)
        assert len(calls) == 1
        layer.clear_filter_cache()
        layer(x)
    assert len(calls) == 1 and CF.spatial_path_applies((2, 2), 2)
    torch.testing.assert_close(fft, spatial, rtol=0, atol=1e-6)


def test_fft_engine_switch(monkeypatch):
    """Each engine of the switch runs the operator's transforms (counted per library)."""
    calls = {"pocketfft": [], "ducc0": []}
    for module, name in ((scipy.fft, "pocketfft"), (ducc0.fft, "ducc0")):
        original = module.rfftn if module is scipy.fft else module.r2c
        counting = lambda *a, name=name, original=original, **k: (  # noqa: E731
            calls[name].append(1) or original(*a, **k)
        )
        monkeypatch.setattr(module, "rfftn" if module is scipy.fft else "r2c", counting)
    layer, x = converse2d_inputs(CONVERSE2D_CASES[0].shrunk())
    results = {}
    with torch.no_grad():
        for engine in internals.FFT_ENGINES:
            with internals.fft_engine(engine):
                results[engine] = CF.converse2d(x, layer.weight, layer.bias, 1, 6, "circular")
            ran = [name for name, seen in calls.items() if seen]
            assert ran == ([] if engine == "torch" else [engine]), (engine, ran)
            for seen in calls.values():
                seen.clear()
    for result in results.values():
        torch.testing.assert_close(result, results["torch"], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="fft engine"):
        internals.fft_engine("mkl")


def test_use_literal_operator_switches_every_converse2d(monkeypatch):
    torch.manual_seed(0)
    model = create_model("converse_dncnn", num_blocks=2, num_features=4).eval()
    x = torch.rand(1, 1, 20, 20)
    calls = []
    original = CF.converse2d_literal
    monkeypatch.setattr(CF, "converse2d_literal", lambda *a: calls.append(1) or original(*a))
    model, x = model.double(), x.double()  # (the literal algorithm loses digits in float32)
    with torch.no_grad():
        ours = model(x)
        literal = internals.use_literal_operator(model)(x)
    assert len(calls) == sum(isinstance(m, Converse2D) for m in model.modules()) == 2
    torch.testing.assert_close(literal, ours, rtol=0, atol=1e-9)


def test_route_model_tiles_sees_every_tile():
    seen = []
    runner = ModelRunner(torch.nn.Identity(), tile=16, tile_overlap=4)

    def on_tile(x, restore):
        seen.append(tuple(x.shape))
        return restore(x) + 1 if len(seen) == 1 else x

    x = torch.zeros(1, 1, 28, 28)
    with internals.route_model_tiles(on_tile):
        out = runner(x)
    assert len(seen) == runner.passes(28, 28) == 4 and out.max() > 0
    assert runner(x).max() == 0  # switched back


# --------------------------------------------------------------------------------------
# gpu_report's pieces
# --------------------------------------------------------------------------------------
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


def test_run_tests_counts_a_real_pytest_run(tmp_path):
    (tmp_path / "test_tiny.py").write_text(
        "import pytest\n\ndef test_a():\n    pass\n\ndef test_b():\n    assert False\n\n"
        "@pytest.mark.skip(reason='x')\ndef test_c():\n    pass\n"
    )
    run = gr.TestRun("tiny", [str(tmp_path / "test_tiny.py")])
    gr.run_tests([run], timeout=300)
    assert run.returncode == 1 and run.problem == ""
    assert (run.counts["passed"], run.counts["failed"], run.counts["skipped"]) == (1, 1, 1)
    assert run.failures and run.failures[0].startswith("FAILED ") and "test_b" in run.failures[0]
    assert gr.plan_tests(quick=True)[0].args[:2] == ["-m", "cuda"]


def test_operator_cases_cover_the_issue_sizes():
    full = gr.operator_cases(quick=False)
    shapes = {(c.batch, c.channels, c.size, c.scale) for c in full}
    assert {(1, c.channels, c.size, c.scale) for c in CONVERSE2D_CASES} <= shapes
    assert (1, 64, 128, 2) in shapes and (8, 64, 256, 1) in shapes
    quick = gr.operator_cases(quick=True)
    assert len(quick) == len(full)
    for small, big in zip(quick, full, strict=True):
        assert small.batch * small.channels * small.size**2 < big.batch * big.channels * big.size**2
        assert "quick" in small.describe()
        layer, x = converse2d_inputs(small)  # valid Converse2D inputs
        with torch.no_grad():
            assert layer(x).shape[-1] == small.scale * small.size


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


def test_fill_timing_records_a_failure_and_keeps_the_rest():
    res = harness.interleave(
        {"ours": lambda: torch.ones(3), "literal": lambda: 1 / 0}, 2, keep_going=True
    )
    row = gr.Row("operator", "case", "float32")
    gr.fill_timing(row, res["ours"], res["literal"], torch.device("cpu"), torch.ones(3))
    assert row.ours.endswith(" ms")
    assert row.literal == "failed: ZeroDivisionError: division by zero"
    assert row.speedup == "n/a (no time for literal)"
    assert row.peak == "n/a (CUDA only)"
    assert row.error == "0.0e+00 / —"
    assert list(row.timings) == ["ours"]


def test_fill_timing_on_cuda_reports_the_memory_peaks():
    """The CUDA cells, from made-up results (no device needed to format them)."""
    ours = harness.Timing([0.002], [0.002], torch.tensor([1.0, 2.0]), 12.4)
    literal = harness.Timing([0.010], [0.010], torch.tensor([1.0, 2.2]), 300.0)
    row = gr.Row("operator", "case", "autocast float16")
    gr.fill_timing(row, ours, literal, torch.device("cuda"), torch.tensor([1.0, 2.0]))
    assert (row.ours, row.literal, row.speedup) == ("2 ms", "10 ms", "5.00×")
    assert row.peak == "12 / 300"
    assert row.error == "0.0e+00 / 1.0e-01"
    gr.fill_timing(row, ours, RuntimeError("cuFFT ... powers of two"), torch.device("cuda"))
    assert row.peak == "12 / —"
    assert row.literal == "failed: RuntimeError: cuFFT ... powers of two"
    assert row.error == "n/a (no float64 reference)"


def test_render_report(tmp_path):
    rows = [gr.Row("operator", "a case", "float32", notes="n")]
    run = gr.TestRun("pytest -m cuda tests", [], {k: 1 for k in gr._SUMMARY_KEYS}, 2.0, 0)
    run.failures = ["FAILED tests/x.py::t"]
    header = {"device": "Some GPU", "torch": "x"}
    text = gr.render_report(header, [run, gr.TestRun("other", [])], rows, "complete")
    assert "**Device:** Some GPU" in text and "Status: complete" in text
    assert table_rows(text, "| test run")[1][1] == "not run"
    assert table_rows(text, "| section")[0][3] == gr.PENDING
    assert "- pytest -m cuda tests: `FAILED tests/x.py::t`" in text


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


def test_sigterm_leaves_a_partial_report(tmp_path, monkeypatch):
    """A SIGTERM during the first section: exit code 130 and the report, rows pending."""

    def killed(*args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not interrupt the run")

    monkeypatch.setattr(gr, "run_operator", killed)
    out = tmp_path / "report.md"
    argv = ["--device", "cpu", "--quick", "--sections", "operator,models", "--out", str(out)]
    assert gr.main(argv) == 130
    assert signal.getsignal(signal.SIGTERM) is not gr._on_sigterm  # handler restored
    text = out.read_text(encoding="utf-8")
    assert "Status: interrupted (signal 15) after no section" in text
    rows = table_rows(text, "| section")
    assert len(rows) == len(gr.plan_operator(True)) + len(gr.plan_models(True))
    assert all(r[3] == gr.PENDING for r in rows)


@pytest.mark.slow
def test_cpu_quick_compile_rows(tmp_path):
    """The torch.compile rows, which --quick skips on the CPU (inductor builds C++: minutes)."""
    out = tmp_path / "report.md"
    argv = ["--device", "cpu", "--quick", "--compile", "--sections", "training"]
    assert gr.main([*argv, "--out", str(out)]) == 0
    rows = table_rows(out.read_text(encoding="utf-8"), "| section")
    compiled = [r for r in rows if r[2].startswith("torch.compile")]
    assert len(compiled) == 2
    for row in compiled:
        assert re.match(rf"^{NUMBER} steps/s$", row[3]), row
        assert re.search(rf"first 2 steps \(compiling\) {NUMBER} s; {NUMBER}× eager ours", row[8])


# --------------------------------------------------------------------------------------
# the checkerboard measure
# --------------------------------------------------------------------------------------
def test_periodic_share_of_a_checkerboard_and_of_smooth_images():
    cb = importlib.import_module("benchmarks.bench_checkerboard")
    ii, jj = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    board = ((ii + jj) % 2).double()
    assert cb.periodic_share(board) == pytest.approx(1.0)
    assert cb.periodic_share(board + 3.0, relative_to_dc=True) == pytest.approx(
        (0.5 * 256) ** 2 / (3.5 * 256) ** 2
    )
    smooth = torch.sin(2 * torch.pi * ii / 16).double()
    assert cb.periodic_share(smooth) < 1e-12  # (float32 sine: rounding only)
    nearest = torch.rand(8, 8).repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert cb.periodic_share(nearest) < 1e-12  # the 2×2 box zeroes those frequencies
