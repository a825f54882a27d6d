"""Training-step throughput of Converse-DnCNN: the project's operator vs the paper's algorithm.

Builds Converse-DnCNN (by default the paper's size: 64 features, 20 blocks, kernel 7) twice
with identical weights, once with the project's Converse2D and once with every Converse2D
switched to the literal paper algorithm (``conversenet.functional.converse2d_literal``),
and times one training step (forward, L1 loss, backward, Adam update) on the same batch of
noisy patches (sigma 25), the variants interleaved (``benchmarks/harness.py``). Prints the
median step time, images per second, the speed-up, how far the two networks' gradients
differ in float64 (they compute the same function) and the peak resident memory of the
process.

    python -m benchmarks.bench_training --threads 2                # batch 8 of 40x40, CPU
    python -m benchmarks.bench_training --device cuda --batch 64 --amp
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from benchmarks import harness
from benchmarks.internals import use_literal_operator
from conversenet.models import create_model


def make_step(model, optimizer, noisy, clean, amp: bool):
    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(noisy.device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(noisy)
        loss = F.l1_loss(out.float(), clean)
        loss.backward()
        optimizer.step()
        return loss

    return step


def gradients(model, noisy, clean):
    model.zero_grad(set_to_none=True)
    F.l1_loss(model(noisy), clean).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=(5, 1), threads=(None, 1))
    parser.option("--batch", 8, 2, type=int, help="patches per step")
    parser.option("--patch", 40, 16, type=int, help="patch side")
    parser.option("--blocks", 20, 2, type=int, help="Converse blocks")
    parser.option("--features", 64, 8, type=int, help="feature channels")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    torch.manual_seed(0)
    fast = create_model("converse_dncnn", num_blocks=args.blocks, num_features=args.features)
    fast = fast.to(device)
    literal = use_literal_operator(copy.deepcopy(fast))
    clean = torch.rand(args.batch, 1, args.patch, args.patch, device=device)
    noisy = clean + 25 / 255 * torch.randn_like(clean)

    # the two operators agree to rounding: compare their gradients in float64
    # (on two images, to keep the float64 graphs small)
    x64, y64 = noisy[:2].double(), clean[:2].double()
    g_fast = gradients(copy.deepcopy(fast).double(), x64, y64)
    g_lit = gradients(use_literal_operator(copy.deepcopy(fast).double()), x64, y64)
    grad_rel = max(
        ((g_fast[n] - g_lit[n]).norm() / g_lit[n].norm().clamp_min(1e-30)).item() for n in g_fast
    )

    steps = {}
    for name, model in (("ours", fast), ("literal", literal)):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        steps[name] = make_step(model, optimizer, noisy, clean, args.amp)
    times = harness.interleave(steps, args.repeats, args.warmup, device=device)
    speedup = times["literal"].seconds / times["ours"].seconds
    peak = harness.peak_rss_mib()

    params = sum(p.numel() for p in fast.parameters())
    case = f"training step, batch {args.batch} of {args.patch}x{args.patch}"
    print(
        f"Converse-DnCNN training step ({params:,} parameters, {args.blocks} blocks, "
        f"{args.features} features), batch {args.batch} of {args.patch}x{args.patch}, "
        f"{device}, {torch.get_num_threads()} threads, median of {args.repeats}; "
        f"{harness.machine_load()}"
    )
    print(f"{'operator':<10} {'step (s)':>10} {'images/s':>10}")
    results = harness.Results(args.benchmark)
    for name, t in times.items():
        print(f"{name:<10} {t.seconds:>10.3f} {args.batch / t.seconds:>10.2f}")
        results.add(
            case, name, size=args.patch, timing=t, images_per_s=args.batch / t.seconds,
            speedup=times["literal"].seconds / t.seconds, grad_rel_diff=grad_rel,
            process_peak_mib=peak, device=str(device), amp=args.amp, batch=args.batch,
        )  # fmt: skip
    print(f"speed-up {speedup:.2f}x; max relative gradient difference {grad_rel:.2e}")
    print(f"peak RSS {peak:.0f} MiB")
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
