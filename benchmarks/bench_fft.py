"""Which FFT library the operator should use on the CPU: PyTorch's (MKL in the x86 wheels)
or scipy's pocketfft, for the transforms alone and in a Converse-DnCNN forward.

The operator (``conversenet.spectral``) runs its transforms outside autograd in pocketfft
and those that autograd tracks in PyTorch; this script switches that choice
(``spectral._pocketfft_applies``) to measure both ways in one process:

* ``rfft2`` / ``irfft2`` of a 128-channel float32 array at the padded sizes of a 256² and
  a 512² image (268 = 4·67, 524 = 4·131);
* Converse-DnCNN forward (random weights, inference mode) on a 256² and a 512² image,
  after a warm-up at the same size.

    python benchmarks/bench_fft.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import scipy.fft
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conversenet.operator.fft as spectral
from conversenet import create_model, reuse_freed_memory

from common import median_time

POCKETFFT = spectral._pocketfft_applies


def use_pocketfft(enabled: bool) -> None:
    spectral._pocketfft_applies = POCKETFFT if enabled else (lambda *tensors: False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reuse_freed_memory()
    workers = args.threads

    print(f"{args.threads} thread(s), median of {args.repeats}; times in ms")
    print("| case | PyTorch | pocketfft |\n|---|---|---|")
    for n in (268, 524):
        x = torch.rand(1, 128, n, n)
        x_hat = torch.fft.rfft2(x)
        rows = (
            (
                f"rfft2 128x{n}²",
                partial(torch.fft.rfft2, x),
                partial(scipy.fft.rfft2, x.numpy(), workers=workers),
            ),
            (
                f"irfft2 128x{n}²",
                partial(torch.fft.irfft2, x_hat, s=(n, n)),
                partial(scipy.fft.irfft2, x_hat.numpy(), s=(n, n), workers=workers),
            ),
        )
        for name, with_torch, with_pocketfft in rows:
            print(
                f"| {name} | {1e3 * median_time(with_torch, args.repeats):.1f} "
                f"| {1e3 * median_time(with_pocketfft, args.repeats):.1f} |"
            )

    torch.manual_seed(0)
    model = create_model("converse_dncnn").eval()
    for n, repeats in ((256, args.repeats), (512, max(1, args.repeats // 2))):
        x = torch.rand(1, 1, n, n)
        times = {}
        for enabled in (False, True):
            use_pocketfft(enabled)
            with torch.inference_mode():
                times[enabled] = 1e3 * median_time(partial(model, x), repeats)
        print(f"| Converse-DnCNN forward {n}² | {times[False]:.0f} | {times[True]:.0f} |")
    use_pocketfft(True)


if __name__ == "__main__":
    main()
