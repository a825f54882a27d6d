"""Converse-SRResNet ×4 with and without the exact spatial path of its ×2 upsamplers.

Its two Converse2D upsamplers have kernel 2 and scale 2: the blocks of their
least-squares problems do not overlap, so the operator solves them in the pixel domain
(nearest upsampling times a 2×2 pattern per channel) instead of with two FFTs and a
spectral filter. ``before`` switches that path off (every Converse2D takes the FFT path,
as before it existed); ``after`` is the library as it is. Both run the same model (the
official weights when ``CONVERSENET_WEIGHTS`` holds them, else the random
initialisation), interleaved, ``--repeats`` times:

* inference: one 3×``--size``² image under ``torch.no_grad()``, filter caches warm;
* training: forward and backward of a batch of 4 RGB 32×32 patches.

The table gives medians of wall and process CPU time and their ratios, and the largest
difference between the two outputs.

    python benchmarks/bench_srresnet.py --repeats 5 --size 128
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from bench_reverse_conv import fft_path_only
from conversenet import create_model
from conversenet.runtime import reuse_freed_memory

from common import interleaved_times, machine_load


def load_model() -> tuple[torch.nn.Module, str]:
    folder = os.environ.get("CONVERSENET_WEIGHTS")
    if folder and (Path(folder) / "converse_srresnet.pth").is_file():
        return create_model("converse_srresnet", pretrained=True), "official weights"
    torch.manual_seed(0)
    return create_model("converse_srresnet"), "random initialisation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per variant")
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="untimed rounds first (>= 1; layers keep filters from the 2nd)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--size", type=int, default=128, help="side of the LR test image")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reuse_freed_memory()
    model, source = load_model()
    torch.manual_seed(1)
    image = torch.rand(1, 3, args.size, args.size)
    patches = torch.rand(4, 3, 32, 32)

    def infer() -> torch.Tensor:
        with torch.no_grad():
            return model.eval()(image)

    def train() -> torch.Tensor:
        model.train().zero_grad()
        out = model(patches)
        out.square().mean().backward()
        return out.detach()

    def before(fn):
        def run():
            with fft_path_only():
                return fn()

        return run

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.repeats} "
        f"repeats, Converse-SRResNet x4 ({source}); {machine_load()}\n"
    )
    print(
        "| case | before ms (wall / cpu) | after ms (wall / cpu) | speed-up (wall / cpu) "
        "| max abs. difference |"
    )
    print("|---|---|---|---|---|")
    for name, fn in ((f"inference 1x3x{args.size}²", infer), ("training 4x3x32²", train)):
        calls = {"before": before(fn), "after": fn}
        difference = (calls["before"]() - calls["after"]()).abs().max().item()
        t = interleaved_times(calls, args.repeats, args.warmup)
        b, a = t["before"], t["after"]
        print(
            f"| {name} | {b['wall']:.0f} / {b['cpu']:.0f} | {a['wall']:.0f} / {a['cpu']:.0f} "
            f"| {b['wall'] / a['wall']:.2f}x / {b['cpu'] / a['cpu']:.2f}x | {difference:.1e} |",
            flush=True,
        )
    print(f"\n{machine_load()}")


if __name__ == "__main__":
    main()
