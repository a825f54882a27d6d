"""Which FFT library the operator should use on the CPU: PyTorch's (MKL in the x86 wheels)
or scipy's pocketfft, for the transforms alone and in a Converse-DnCNN forward.

The operator runs its transforms outside autograd in pocketfft and those that autograd
tracks in PyTorch; this script switches that choice (``benchmarks/internals.py``) to
measure both ways in one process, the two interleaved (``benchmarks/harness.py``):

* ``rfft2`` / ``irfft2`` of a 128-channel float32 array at the padded sizes of each
  ``--sizes`` image (padding 6 on each side: 268 = 4·67 for 256², 524 = 4·131 for 512²);
* Converse-DnCNN forward (random weights, inference mode) on a ``--sizes`` image.

    python -m benchmarks.bench_fft --threads 2
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial

import scipy.fft
import torch

from benchmarks import harness
from benchmarks.internals import pocketfft
from conversenet import create_model, reuse_freed_memory

PADDING = 6  # each side, in Converse-DnCNN's Converse2D layers


def in_dncnn(model: torch.nn.Module, x: torch.Tensor, use_pocketfft: bool):
    def forward() -> torch.Tensor:
        with pocketfft(use_pocketfft), torch.inference_mode():
            return model(x)

    return forward


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=(5, 1), threads=(2, 1))
    parser.option("--sizes", [256, 512], [16], type=int, nargs="+", help="image sides")
    parser.option("--channels", 128, 8, type=int, help="channels of the transformed array")
    args = parser.parse_args(argv)
    reuse_freed_memory()
    workers = args.threads
    results = harness.Results(args.benchmark)
    print(harness.run_header(f"median of {args.repeats}; times in ms") + "\n")
    print(harness.markdown_table(("case", "PyTorch", "pocketfft"), []), end="")

    def report(case: str, size: int, calls: dict) -> None:
        times = harness.interleave(calls, args.repeats, args.warmup)
        for variant, timing in times.items():
            results.add(case, variant, size=size, timing=timing)
        cells = [f"{1e3 * t.seconds:.1f}" for t in times.values()]
        print(harness.markdown_row((case, *cells)), flush=True)

    for size in args.sizes:
        n = size + 2 * PADDING
        x = torch.rand(1, args.channels, n, n)
        x_hat = torch.fft.rfft2(x)
        report(
            f"rfft2 {args.channels}x{n}²",
            size,
            {
                "PyTorch": partial(torch.fft.rfft2, x),
                "pocketfft": partial(scipy.fft.rfft2, x.numpy(), workers=workers),
            },
        )
        report(
            f"irfft2 {args.channels}x{n}²",
            size,
            {
                "PyTorch": partial(torch.fft.irfft2, x_hat, s=(n, n)),
                "pocketfft": partial(scipy.fft.irfft2, x_hat.numpy(), s=(n, n), workers=workers),
            },
        )
    torch.manual_seed(0)
    model = create_model("converse_dncnn").eval()
    for size in args.sizes:
        x = torch.rand(1, 1, size, size)
        calls = {"PyTorch": in_dncnn(model, x, False), "pocketfft": in_dncnn(model, x, True)}
        report(f"Converse-DnCNN forward {size}²", size, calls)
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
