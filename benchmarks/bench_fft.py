"""Which FFT library the operator should use on the CPU: PyTorch's (MKL in the x86 wheels),
scipy's pocketfft or ducc0, for the transforms alone and in a Converse-DnCNN forward.

The operator runs its CPU transforms outside autograd in ducc0 (pocketfft where ducc0 is
not installed) and those that autograd tracks in PyTorch; this script switches that choice
(``benchmarks/internals.py``) to measure every way in one process, interleaved
(``benchmarks/harness.py``):

* ``rfft2`` / ``irfft2`` of a 128-channel float32 array at the padded sizes of each
  ``--sizes`` image (padding 6 on each side: 268 = 4·67 for 256², 524 = 4·131 for 512²),
  ducc0 also into a preallocated output (``ducc0 out=``, as the operator calls it);
* Converse-DnCNN forward (random weights, inference mode) on a ``--sizes`` image.

    python -m benchmarks.bench_fft --threads 2
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial

import ducc0.fft
import scipy.fft
import torch

from benchmarks import harness
from benchmarks.internals import fft_engine
from conversenet import create_model, reuse_freed_memory

PADDING = 6  # each side, in Converse-DnCNN's Converse2D layers


VARIANTS = ("PyTorch", "pocketfft", "ducc0", "ducc0 out=")
ENGINES = {"PyTorch": "torch", "pocketfft": "pocketfft", "ducc0": "ducc0"}  # in the forward


def in_dncnn(model: torch.nn.Module, x: torch.Tensor, engine: str):
    def forward() -> torch.Tensor:
        with fft_engine(engine), torch.inference_mode():
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
    print(harness.markdown_table(("case", *VARIANTS), []), end="")

    def report(case: str, size: int, calls: dict) -> None:
        times = harness.interleave(calls, args.repeats, args.warmup)
        for variant, timing in times.items():
            results.add(case, variant, size=size, timing=timing)
        cells = [f"{1e3 * times[v].seconds:.1f}" if v in times else "" for v in VARIANTS]
        print(harness.markdown_row((case, *cells)), flush=True)

    for size in args.sizes:
        n = size + 2 * PADDING
        x = torch.rand(1, args.channels, n, n)
        x_hat = torch.fft.rfft2(x)
        spectrum, image = torch.empty_like(x_hat).numpy(), torch.empty_like(x).numpy()
        report(
            f"rfft2 {args.channels}x{n}²",
            size,
            {
                "PyTorch": partial(torch.fft.rfft2, x),
                "pocketfft": partial(scipy.fft.rfft2, x.numpy(), workers=workers),
                "ducc0": partial(ducc0.fft.r2c, x.numpy(), axes=(2, 3), nthreads=workers),
                "ducc0 out=": partial(
                    ducc0.fft.r2c, x.numpy(), axes=(2, 3), nthreads=workers, out=spectrum
                ),
            },
        )
        inverse = partial(ducc0.fft.c2r, axes=(2, 3), lastsize=n, inorm=2, nthreads=workers)
        report(
            f"irfft2 {args.channels}x{n}²",
            size,
            {
                "PyTorch": partial(torch.fft.irfft2, x_hat, s=(n, n)),
                "pocketfft": partial(scipy.fft.irfft2, x_hat.numpy(), s=(n, n), workers=workers),
                "ducc0": partial(inverse, x_hat.numpy(), forward=False),
                "ducc0 out=": partial(inverse, x_hat.numpy(), forward=False, out=image),
            },
        )
    torch.manual_seed(0)
    model = create_model("converse_dncnn").eval()
    for size in args.sizes:
        x = torch.rand(1, 1, size, size)
        calls = {variant: in_dncnn(model, x, engine) for variant, engine in ENGINES.items()}
        report(f"Converse-DnCNN forward {size}²", size, calls)
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
