"""Export every registered model at its default size with the real command, and report
the time, the file size and the onnxruntime check.

Each model runs ``conversenet export NAME -o FILE`` in a fresh process (its published or
packaged weights when present, ``--untrained`` otherwise: the same graph), so the times
include Python's start and PyTorch's import, as a user sees them. Prints a Markdown table
and the machine's load average before and after.

    CONVERSENET_WEIGHTS=../shared/weights/official python -m benchmarks.bench_export
    python -m benchmarks.bench_export --models converse_dncnn dncnn --threads 2
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import harness
from conversenet import get_model_info, list_models
from conversenet.weights import WeightsNotFoundError, resolve_weights


def has_weights(name: str) -> bool:
    """Whether the model's published (or packaged) weights are on this machine."""
    info = get_model_info(name)
    if info.pretrained is None:
        return False
    try:
        resolve_weights(info.pretrained, download=False)
    except WeightsNotFoundError:
        return False
    return True


def export_once(
    name: str, folder: Path, threads: int | None, timeout: float, size: int | None = None
) -> dict:
    """Run the command for ``name``; its wall and CPU seconds, file size and check."""
    path = folder / f"{name}.onnx"
    weights = has_weights(name)
    command = [sys.executable, "-m", "conversenet.cli", "export", name, "-o", str(path)]
    command += [] if weights else ["--untrained"]
    command += ["--threads", str(threads)] if threads else []
    command += ["--size", str(size)] if size else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: exit {proc.returncode}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    exported = re.search(r"exported in ([\d.]+) s", proc.stderr)
    error = re.search(r"max abs difference ([\d.e+-]+) \(([^);]*)", proc.stdout)
    relative = re.search(r"([\d.e+-]+) of the largest output, ([\d.e+-]+)", proc.stdout)
    size = path.stat().st_size
    path.unlink()
    return {
        "model": name,
        "weights": "published" if weights else "random",
        "checked": error.group(2) if error else "?",
        "wall": wall,
        "cpu": cpu,
        "export": float(exported.group(1)) if exported else float("nan"),
        "mib": size / 2**20,
        "error": error.group(1) if error else "?",
        # untrained weights give outputs of thousands: the difference relative to them
        "relative": f"{relative.group(1)} of {relative.group(2)}" if relative else "",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=None, warmup=None, threads=None)
    parser.option(
        "--models", None, ["converse_srresnet_compact"], nargs="+", help="models to export"
    )
    parser.option("--size", None, 16, type=int, help="fixed side (default: the command's)")
    parser.option("--threads", None, 1, type=int, help="--threads of the command")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per model")
    args = parser.parse_args(argv)
    names = args.models or [n for n in list_models() if get_model_info(n).learned]
    results = harness.Results(args.benchmark)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    headers = ["model", "weights", "size", "command wall s", "CPU s", "of which export s",
               "file MiB", "onnxruntime vs PyTorch", "relative, of the largest output"]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        for name in names:
            row = export_once(name, Path(folder), args.threads, args.timeout, args.size)
            results.add(name, row["weights"], size=args.size, **row)
            rows.append([row["model"], row["weights"], row["checked"], f"{row['wall']:.1f}",
                         f"{row['cpu']:.1f}", f"{row['export']:.1f}", f"{row['mib']:.1f}",
                         row["error"], row["relative"]])  # fmt: skip
            print(f"{name}: {row['wall']:.1f} s, {row['mib']:.1f} MiB", flush=True)
    print(harness.markdown_table(headers, rows))
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
