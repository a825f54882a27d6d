"""The ``conversenet`` entry point: ``--help`` and ``-V`` without PyTorch, Ctrl-C at any
moment (exit 130, no traceback, nothing left behind)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from conversenet.cli import parsers
from conversenet.colour import COLOUR_BASES
from conversenet.inference import COLOUR_ROUTES
from conversenet.io import save_image

from conftest import default_sigint, run_cli

# Runs the command in-process, then says whether PyTorch was imported.
PROBE = """
import sys
from conversenet.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print(f"exit={code} torch={'torch' in sys.modules}", file=sys.stderr)
"""
COMMANDS = ("denoise", "sr", "deblur", "eval", "reproduce", "models", "demo", "train")


@pytest.mark.parametrize(
    "args",
    [["--help"], ["-V"], [], ["serve", "--help"], ["export", "--help"]]
    + [[command, "--help"] for command in COMMANDS]
    + [["denoise", "x.png", "--sigma", "0"], ["eval", "--model", "m", "--data", "d", "--bogus"]],
    ids=lambda args: " ".join(args) or "no arguments",
)
def test_help_version_and_option_errors_do_not_import_torch(args):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert "torch=False" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    expected = 0 if args and args[-1] in ("--help", "-V") else 2
    assert f"exit={expected}" in proc.stderr


def test_the_package_loads_its_names_on_first_use():
    code = (
        "import sys, conversenet\n"
        "assert 'torch' not in sys.modules, 'import conversenet loaded torch'\n"
        "for name in conversenet.__all__:\n"
        "    assert getattr(conversenet, name) is not None, name\n"
        "assert conversenet.Converse2D.__module__ == 'conversenet.operator.layers'\n"
        "assert set(conversenet.__all__) <= set(dir(conversenet))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_the_sigma_of_eval_follows_denoise(tmp_path):
    """0 < sigma <= 255 for both (eval took 0, an infinite input PSNR, and left an empty
    results folder after -5)."""
    for args in (["denoise", "x.png"], ["eval", "--model", "m", "--data", "d", "--out", "res"]):
        for sigma in ("0", "-5"):
            proc = run_cli(*args, "--sigma", sigma, cwd=tmp_path, timeout=120)
            assert proc.returncode == 2 and "0 < sigma <= 255" in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_eval_names_an_unreadable_image_and_leaves_nothing(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    save_image(images / "a.png", np.random.default_rng(0).integers(0, 256, (32, 32), np.uint8))
    (images / "b.png").write_bytes(b"not an image")
    proc = run_cli(
        "eval", "--model", "converse_dncnn_compact", "--data", images, "--out", tmp_path / "res",
        "-q", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "b.png" in errors[0] and "not an image" in errors[0], errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]


def test_serve_defaults_are_those_of_the_app():
    web = pytest.importorskip("conversenet.web")
    assert (parsers.DEFAULT_HOST, parsers.DEFAULT_PORT, parsers.MAX_UPLOAD_MB) == (
        web.DEFAULT_HOST,
        web.DEFAULT_PORT,
        web.MAX_UPLOAD_MB,
    )


def _interrupt(args: list, cwd, when: str = r"\|\s+torch\b") -> subprocess.CompletedProcess:
    """Start the command, send SIGINT when a line of its stderr matches ``when`` (by
    default: as soon as it imports PyTorch, the first seconds of any command), and return
    the finished process; fail if that line never came."""
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "conversenet.cli", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        preexec_fn=default_sigint,
    )
    lines = []
    for line in proc.stderr:  # -X importtime: one line per module imported
        lines.append(line)
        if re.search(when, line):
            break
    else:
        pytest.fail(f"the command ended before {when!r} appeared: {''.join(lines[-5:])}")
    proc.send_signal(signal.SIGINT)
    stdout, rest = proc.communicate(timeout=120)
    lines += rest.splitlines(keepends=True)
    stderr = "".join(line for line in lines if "import time:" not in line)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize(
    "command",
    [
        ["denoise", "in.png", "-o", "out"],
        ["export", "converse_dncnn_compact", "-o", "exported/c.onnx"],
        ["eval", "--model", "converse_dncnn_compact", "--data", "images", "--out", "res"],
    ],
    ids=lambda command: command[0],
)
def test_ctrl_c_in_the_first_seconds(tmp_path, command):
    (tmp_path / "images").mkdir()
    image = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    save_image(tmp_path / "in.png", image)
    save_image(tmp_path / "images" / "a.png", image)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = _interrupt(command, tmp_path)
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "interrupted" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no out/, exported/, res/


def test_ctrl_c_during_an_export(tmp_path):
    pytest.importorskip("onnxscript", reason="exporting needs the `onnx` extra")
    command = ["export", "converse_dncnn", "--untrained", "--size", "32", "-o", "new/d.onnx"]
    proc = _interrupt(command, tmp_path, when="exporting converse_dncnn")
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "interrupted" in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_parsers_choices_agree_with_the_library():
    """cli/parsers.py writes the colour choices out (it may not load PyTorch)."""
    assert parsers.COLOUR_ROUTES == COLOUR_ROUTES
    assert parsers.COLOUR_BASES == COLOUR_BASES
