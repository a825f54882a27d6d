"""Converse-DnCNN forward: this project against the upstream code, side by side.

Each measurement is a fresh process (the import, the model load and a warm-up forward on a
64×64 crop are not timed; the timed call is one forward of the whole noisy Set12 image,
σ 25, seed 0). The two implementations alternate, round after round, so that both see the
same machine load; the outputs of every round are compared (max |ours − upstream|).

The upstream code is never copied into this repository. Get it with::

    git clone https://github.com/cszn/ConverseNet /path/to/ConverseNet

and run::

    python benchmarks/bench_vs_upstream.py --upstream /path/to/ConverseNet

Without ``--upstream`` (or with a folder that does not hold the upstream code) the script
says so and exits 0 without measuring.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
IMAGES = {256: "01.png", 512: "08.png"}  # Set12 images of those sizes
UPSTREAM_MODULE = Path("models") / "converse_dncnn.py"


def noisy_image(size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(SHARED / "data" / "Set12" / IMAGES[size]) as im:
        clean = np.asarray(im.convert("L"), dtype=np.float32) / 255
    np.random.seed(0)  # the paper's protocol
    return (clean + np.random.normal(0, 25 / 255, clean.shape)).astype(np.float32)


def child(args: argparse.Namespace) -> None:
    """One measurement in this process; writes the time and the output to ``--out``."""
    import torch

    torch.set_num_threads(args.threads)
    weights = Path(args.weights)
    if args.impl == "ours":
        from conversenet import create_model, reuse_freed_memory

        reuse_freed_memory()  # what restore(), the CLI and evaluate() do
        model = create_model("converse_dncnn", weights=weights).eval()
        context = torch.inference_mode
    else:
        sys.path.insert(0, str(Path(args.upstream).resolve()))
        from models.converse_dncnn import ConverseDnCNN  # the upstream module

        model = ConverseDnCNN(
            in_channels=1, kernel_size=7, num_features=64, padding=6, padding_mode="circular"
        )
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        model.eval()
        for p in model.parameters():  # as the upstream test script does
            p.requires_grad = False
        context = torch.no_grad
    x = torch.from_numpy(noisy_image(args.size))[None, None]
    if args.float64:  # the reference: the upstream algorithm without float32 rounding
        model, x = model.double(), x.double()
    with context():
        model(x[..., :64, :64])  # warm-up
        start = time.perf_counter()
        y = model(x)
        seconds = time.perf_counter() - start
    np.save(args.out, y.numpy())
    Path(args.out).with_suffix(".json").write_text(json.dumps({"seconds": seconds}))


def run_child(
    impl: str, size: int, args, folder: Path, index: int, float64: bool = False
) -> tuple[float, np.ndarray]:
    out = folder / f"{impl}-{size}-{index}{'-f64' if float64 else ''}.npy"
    command = [
        sys.executable,
        __file__,
        "--child",
        "--impl",
        impl,
        "--size",
        str(size),
        "--threads",
        str(args.threads),
        "--weights",
        str(args.weights),
        "--out",
        str(out),
    ]
    if impl == "upstream":
        command += ["--upstream", str(args.upstream)]
    if float64:
        command.append("--float64")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(command, check=True, env=env)
    seconds = json.loads(out.with_suffix(".json").read_text())["seconds"]
    return seconds, np.load(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", type=Path, help="a checkout of cszn/ConverseNet")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], choices=[256, 512])
    parser.add_argument("--rounds", type=int, default=3, help="measurements per side and size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--weights",
        type=Path,
        default=SHARED / "weights" / "official" / "converse_dncnn.pth",
        help="the official converse_dncnn.pth",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--impl", choices=["ours", "upstream"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--float64", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    if args.upstream is None or not (args.upstream / UPSTREAM_MODULE).is_file():
        print(
            "skipped: give --upstream DIR, a checkout of the upstream code "
            "(git clone https://github.com/cszn/ConverseNet DIR); "
            f"{args.upstream} does not hold {UPSTREAM_MODULE}"
            if args.upstream
            else "skipped: give --upstream DIR, a checkout of the upstream code "
            "(git clone https://github.com/cszn/ConverseNet DIR)"
        )
        return 0
    if not args.weights.is_file():
        print(f"skipped: the official weights {args.weights} are not here")
        return 0
    load = os.getloadavg()
    times: dict[tuple[str, int], list[float]] = {}
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            for size in args.sizes:
                order = ("ours", "upstream") if index % 2 == 0 else ("upstream", "ours")
                outputs = {}
                for impl in order:
                    seconds, outputs[impl] = run_child(impl, size, args, Path(tmp), index)
                    times.setdefault((impl, size), []).append(seconds)
                    print(f"round {index + 1} {size}² {impl:8s} {seconds:7.2f} s", flush=True)
                worst = max(worst, float(np.abs(outputs["ours"] - outputs["upstream"]).max()))
        size = min(args.sizes)  # float64 references, once, untimed
        _, reference = run_child("upstream", size, args, Path(tmp), 0, float64=True)
        _, ours = run_child("ours", size, args, Path(tmp), 1, float64=False)
        _, upstream = run_child("upstream", size, args, Path(tmp), 1, float64=False)
        ours_error = float(np.abs(ours - reference).max())
        upstream_error = float(np.abs(upstream - reference).max())
    print(
        f"\nConverse-DnCNN forward, {args.threads} threads, {args.rounds} rounds; load average "
        f"before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}; max |ours - upstream| {worst:.1e}"
        f"\nagainst the upstream algorithm in float64 ({size}²): ours (float32) {ours_error:.1e}, "
        f"upstream (float32) {upstream_error:.1e}"
    )
    print("| image | upstream s (median) | ours s (median) | speed-up |")
    print("|---|---|---|---|")
    for size in args.sizes:
        up = statistics.median(times[("upstream", size)])
        ours = statistics.median(times[("ours", size)])
        print(f"| {size}² | {up:.2f} | {ours:.2f} | **{up / ours:.1f}×** |")
    return 0 if ours_error <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
