"""Print a run's learning curve (its metrics.csv) as Markdown, and extrapolate it.

    python tools/learning_curve.py runs/unet_colour/metrics.csv --target 32.7 --from-step 1000

The curve: validation PSNR against steps, training wall-clock hours and CPU hours (summed
over sittings). The extrapolation fits ``psnr = a + b·ln(steps)`` by least squares to the
points from ``--from-step`` on (early points reflect the EMA's start more than the
weights), and gives the steps, and the CPU hours at the run's mean CPU time per step, at
which the fit reaches ``--target``. A log-linear fit keeps rising, while real curves
flatten, so the figure is a lower bound on what is needed.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np


def read_curve(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


def extrapolate(rows: list[dict[str, float]], target: float, from_step: int) -> str:
    fit = [r for r in rows if r["step"] >= from_step]
    if len(fit) < 2:
        return f"(fewer than 2 points from step {from_step} on: no extrapolation)"
    steps = np.array([r["step"] for r in fit])
    psnr = np.array([r["psnr"] for r in fit])
    b, a = np.polyfit(np.log(steps), psnr, 1)
    if b <= 0:
        return f"psnr = {a:.3f} + {b:.3f} ln(steps): not rising, no extrapolation"
    need = math.exp((target - a) / b)
    cpu_per_step = rows[-1]["train_cpu_hours"] / rows[-1]["step"]
    wall_per_step = rows[-1]["train_wall_hours"] / rows[-1]["step"]
    return (
        f"fit over steps {int(steps[0])}-{int(steps[-1])}: psnr = {a:.3f} + {b:.3f} ln(steps); "
        f"{target} dB at about {need:,.0f} steps = {need * cpu_per_step:,.1f} CPU hours "
        f"({need * wall_per_step:,.1f} wall-clock hours at this run's pace)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("metrics", type=Path)
    p.add_argument("--target", type=float, default=None, help="PSNR to extrapolate to")
    p.add_argument("--from-step", type=int, default=1000)
    args = p.parse_args()
    rows = read_curve(args.metrics)
    print("| step | wall-clock h | CPU h | PSNR | PSNR (Y) |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {int(r['step'])} | {r['train_wall_hours']:.2f} | {r['train_cpu_hours']:.2f} | "
            f"{r['psnr']:.2f} | {r.get('psnr_y', float('nan')):.2f} |"
        )
    if args.target is not None:
        print()
        print(extrapolate(rows, args.target, args.from_step))


if __name__ == "__main__":
    main()
