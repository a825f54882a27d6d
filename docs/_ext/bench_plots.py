"""Plots of benchmark results: time and peak memory against image size, per variant.

Reads benchmark records from JSON files and draws one figure per ``(case, metric)``.
The docs build runs it on ``docs/data/benchmarks/*.json`` (the figures of the
Performance page); run it yourself on the ``--json`` output of a benchmark script::

    python docs/_ext/bench_plots.py results/*.json --out plots/

Accepted input (tolerant, so that every benchmark script's output can be read):

* a JSON list of records, a JSON object with the list under ``"records"``,
  ``"results"`` or ``"rows"`` (its other keys are provenance: command, date, load, ...),
  or JSON Lines (one record per line);
* a record is a flat object. Its case is ``case`` (or ``name``, ``benchmark``), its
  variant ``variant`` (or ``impl``, ``implementation``, ``method``, ``backend``,
  ``runtime``); its size ``size`` (an int side, ``"512x512"``, ``"512²"`` or ``[H, W]``;
  or ``height`` and ``width``; or ``image_size``, ``side``), plotted as the side of a
  square of the same area; its time ``seconds`` (or ``time_s``, ``wall_s``,
  ``median_s``, or milliseconds as ``ms``, ``wall_ms``, ``median_ms``, ``time_ms``); its
  peak memory in MiB ``peak_mib`` (or ``peak_memory_mib``, ``peak_rss_mib``,
  ``memory_mib``, ``peak_mb``; or ``peak_gib``, ``peak_bytes``, ``maxrss_kib``).
  Records without a size or without the metric are left out of that figure; other
  keys are ignored.

Several records for the same case, variant and size (repeated runs) are drawn as dots,
joined through their median.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

CASE_KEYS = ("case", "name", "benchmark")
VARIANT_KEYS = ("variant", "impl", "implementation", "method", "backend", "runtime")
SIZE_KEYS = ("size", "image_size", "side")
SECONDS = {"seconds": 1.0, "time_s": 1.0, "wall_s": 1.0, "median_s": 1.0}
SECONDS |= {"ms": 1e-3, "wall_ms": 1e-3, "median_ms": 1e-3, "time_ms": 1e-3}
MEMORY = {"peak_mib": 1.0, "peak_memory_mib": 1.0, "peak_rss_mib": 1.0, "memory_mib": 1.0}
MEMORY |= {"peak_mb": 1.0, "peak_gib": 1024.0, "peak_bytes": 2.0**-20, "maxrss_kib": 1 / 1024}
METRICS = {
    "seconds": (SECONDS, "time (s)", "time"),
    "peak_mib": (MEMORY, "peak memory (MiB)", "memory"),
}


def read_records(path: str | Path) -> list[dict]:
    """The records of one file (see the module docstring for the accepted layouts)."""
    text = Path(path).read_text(encoding="utf-8").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        data = next((data[k] for k in ("records", "results", "rows") if k in data), [data])
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of records, got {type(data).__name__}")
    return [record for record in data if isinstance(record, dict)]


def _first(record: dict, keys: Iterable[str]):
    return next((record[k] for k in keys if record.get(k) is not None), None)


def record_side(record: dict) -> float | None:
    """The image size of a record as the side of a square of the same area."""
    if record.get("height") and record.get("width"):
        return math.sqrt(float(record["height"]) * float(record["width"]))
    size = _first(record, SIZE_KEYS)
    if isinstance(size, (list, tuple)) and len(size) >= 2:
        return math.sqrt(float(size[-2]) * float(size[-1]))
    if isinstance(size, (int, float)):
        return float(size)
    if isinstance(size, str):
        numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", size.split("²")[0])]
        if len(numbers) == 1:
            return numbers[0]
        if len(numbers) >= 2:
            return math.sqrt(numbers[-2] * numbers[-1])
    return None


def record_value(record: dict, metric: str) -> float | None:
    """The record's time in seconds (``metric="seconds"``) or peak memory in MiB."""
    for key, factor in METRICS[metric][0].items():
        if isinstance(record.get(key), (int, float)):
            return float(record[key]) * factor
    return None


def series(records: Iterable[dict], metric: str) -> dict[str, dict[str, dict[float, list]]]:
    """``{case: {variant: {side: [values]}}}`` of the records that have size and metric."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for record in records:
        side, value = record_side(record), record_value(record, metric)
        if side is None or value is None:
            continue
        case = str(_first(record, CASE_KEYS) or "benchmark")
        variant = str(_first(record, VARIANT_KEYS) or "default")
        out[case][variant][side].append(value)
    return out


def _colours(variants: Iterable[str]) -> dict[str, str]:
    """One colour per variant, the same in every figure for ``ours`` and ``upstream``."""
    fixed = {"ours": "C0", "upstream": "C1"}
    others = iter(f"C{i}" for i in range(2, 10))
    return {v: fixed.get(v) or next(others) for v in sorted(variants)}


def plot(case: str, variants: dict[str, dict[float, list]], metric: str, path: Path) -> Path:
    """One figure: the metric against image size, one line per variant (log-log axes),
    each median labelled with its value."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    unit = "s" if metric == "seconds" else "MiB"
    rank = {  # at each size, the lower of two neighbouring values is labelled below
        (variant, side): order
        for side in {s for points in variants.values() for s in points}
        for order, variant in enumerate(
            sorted(
                (v for v in variants if side in variants[v]),
                key=lambda v, side=side: statistics.median(variants[v][side]),
            )
        )
    }
    for variant, colour in _colours(variants).items():
        points = variants[variant]
        sides = sorted(points)
        medians = [statistics.median(points[s]) for s in sides]
        ax.plot(sides, medians, marker="o", color=colour, label=variant)
        for side, value in zip(sides, medians, strict=True):
            ax.scatter([side] * len(points[side]), points[side], s=10, color=colour)
            ax.annotate(
                f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}",
                (side, value),
                textcoords="offset points",
                xytext=(6, 2 if rank[variant, side] % 2 else -8),
                fontsize=7,
                color=colour,
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    every = sorted({s for points in variants.values() for s in points})
    ax.set_xticks(every, [f"{s:g}²" for s in every])
    ax.set_xlim(every[0] / 1.25, every[-1] * 1.5)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("image size (pixels)")
    ax.set_ylabel(METRICS[metric][1])
    ax.set_title(case, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def plot_files(files: Iterable[str | Path], out_dir: Path, cases: str = ".*") -> list[Path]:
    """Every ``(case, metric)`` figure of the records in ``files`` whose case matches."""
    records = [r for f in files for r in read_records(f)]
    written = []
    for metric, (_, _, name) in METRICS.items():
        for case, variants in sorted(series(records, metric).items()):
            if re.search(cases, case):
                written.append(plot(case, variants, metric, out_dir / f"{name}-{slug(case)}.png"))
    return written


# --- the Sphinx extension ---------------------------------------------------------------
def _build_figures(app) -> None:
    data = Path(app.srcdir) / "data" / "benchmarks"
    out = Path(app.srcdir) / "_generated" / "plots"
    for name, spec in app.config.bench_plots.items():
        records = [r for f in sorted(data.glob("*.json")) for r in read_records(f)]
        variants = series(records, spec["metric"]).get(spec["case"])
        if not variants:
            raise ValueError(
                f"bench_plots[{name!r}]: no records of case {spec['case']!r} with a size "
                f"and {spec['metric']!r} in {data}"
            )
        plot(spec.get("title", spec["case"]), variants, spec["metric"], out / name)


def setup(app) -> dict:
    # {file name: {"case": ..., "metric": "seconds" | "peak_mib", "title": ...}}
    app.add_config_value("bench_plots", {}, "env")
    app.connect("builder-inited", _build_figures)
    return {"parallel_read_safe": True, "version": "1"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="benchmark JSON files")
    parser.add_argument("--out", type=Path, default=Path("plots"), help="output folder")
    parser.add_argument("--cases", default=".*", help="regular expression on the case names")
    args = parser.parse_args(argv)
    for path in plot_files(args.files, args.out, args.cases):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
