"""Converse-SRResNet ×4 with and without the exact spatial path of its ×2 upsamplers.

Its two Converse2D upsamplers have kernel 2 and scale 2: the blocks of their
least-squares problems do not overlap, so the operator solves them in the pixel domain
(nearest upsampling times a 2×2 pattern per channel) instead of with two FFTs and a
spectral filter. ``before`` switches that path off (every Converse2D takes the FFT path,
as before it existed); ``after`` is the library as it is. Both run the same model (the
official weights when ``CONVERSENET_WEIGHTS`` holds them, else the random
initialisation), interleaved (``benchmarks/harness.py``):

* inference: one 3×``--size``² image under ``torch.no_grad()``, filter caches warm;
* training: forward and backward of a batch of 4 RGB ``--patch``² patches (32²).

The table gives medians of wall and process CPU time and their ratios, and the largest
difference between the two outputs.

    python -m benchmarks.bench_srresnet --repeats 5 --size 128
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from benchmarks import harness
from benchmarks.internals import fft_path_only
from conversenet import create_model, reuse_freed_memory


def load_model() -> tuple[torch.nn.Module, str]:
    folder = os.environ.get("CONVERSENET_WEIGHTS")
    if folder and (Path(folder) / "converse_srresnet.pth").is_file():
        return create_model("converse_srresnet", pretrained=True), "official weights"
    torch.manual_seed(0)
    return create_model("converse_srresnet"), "random initialisation"


def before(fn: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """``fn`` with the spatial path switched off."""

    def run() -> torch.Tensor:
        with fft_path_only():
            return fn()

    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=(5, 1), warmup=(2, 1))
    parser.option("--size", 128, 8, type=int, help="side of the LR test image")
    parser.option("--patch", 32, 8, type=int, help="side of the training patches")
    args = parser.parse_args(argv)
    reuse_freed_memory()
    model, source = load_model()
    torch.manual_seed(1)
    image = torch.rand(1, 3, args.size, args.size)
    patches = torch.rand(4, 3, args.patch, args.patch)

    def infer() -> torch.Tensor:
        with torch.no_grad():
            return model.eval()(image)

    def train() -> torch.Tensor:
        model.train().zero_grad()
        out = model(patches)
        out.square().mean().backward()
        return out.detach()

    results = harness.Results(args.benchmark)
    print(harness.run_header(f"{args.repeats} repeats, Converse-SRResNet x4 ({source})") + "\n")
    headers = ("case", "before ms (wall / cpu)", "after ms (wall / cpu)", "speed-up (wall / cpu)")
    print(harness.markdown_table((*headers, "max abs. difference"), []), end="")
    cases = (
        (f"inference 1x3x{args.size}²", args.size, infer),
        (f"training 4x3x{args.patch}²", args.patch, train),
    )
    for name, size, fn in cases:
        calls = {"before": before(fn), "after": fn}
        t = harness.interleave(calls, args.repeats, args.warmup)
        b, a = t["before"], t["after"]
        difference = (b.result - a.result).abs().max().item()
        for variant, timing in t.items():
            results.add(
                name, variant, size=size, timing=timing, baseline=b, max_abs_difference=difference
            )
        row = (
            name,
            harness.ms_cell(b, 0),
            harness.ms_cell(a, 0),
            harness.speedup_cell(b, a),
            f"{difference:.1e}",
        )
        print(harness.markdown_row(row), flush=True)
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
