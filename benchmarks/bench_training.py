"""Training-step throughput of Converse-DnCNN: the project's operator vs the paper's algorithm.

Builds Converse-DnCNN (by default the paper's size: 64 features, 20 blocks, kernel 7) twice
with identical weights, once with the project's Converse2D and once with every Converse2D
switched to the literal paper algorithm (``conversenet.functional.converse2d_literal``),
and times one training step (forward, L1 loss, backward, Adam update) on the same batch of
noisy patches (sigma 25), the variants in turn. Prints the median step time, images per
second, the speed-up and how far the two networks' gradients differ in float64 (they
compute the same function).

    python benchmarks/bench_training.py                      # batch 8 of 40x40, CPU
    python benchmarks/bench_training.py --device cuda --batch 64 --amp
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conversenet.models import create_model

from common import interleaved_times, peak_rss_mb, use_literal_operator


def make_step(model, optimizer, noisy, clean, amp: bool):
    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(noisy.device.type, dtype=torch.bfloat16, enabled=amp):
            out = model(noisy)
        loss = F.l1_loss(out.float(), clean)
        loss.backward()
        optimizer.step()
        if noisy.device.type == "cuda":
            torch.cuda.synchronize()
        return loss

    return step


def gradients(model, noisy, clean):
    model.zero_grad(set_to_none=True)
    F.l1_loss(model(noisy), clean).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=40)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    fast = create_model("converse_dncnn", num_blocks=args.blocks, num_features=args.features).to(
        device
    )
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
    # in turn, so that a change in the machine's load hits every variant alike
    times = interleaved_times(steps, args.repeats, warmup=args.warmup)
    results = {}
    for name, t in times.items():
        seconds = t["wall"] / 1e3
        results[name] = {"step_s": seconds, "images_per_s": args.batch / seconds}
    speedup = results["literal"]["step_s"] / results["ours"]["step_s"]

    params = sum(p.numel() for p in fast.parameters())
    print(
        f"Converse-DnCNN training step ({params:,} parameters, {args.blocks} blocks, "
        f"{args.features} features), batch {args.batch} of {args.patch}x{args.patch}, "
        f"{device}, {torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"{'operator':<10} {'step (s)':>10} {'images/s':>10}")
    for name, r in results.items():
        print(f"{name:<10} {r['step_s']:>10.3f} {r['images_per_s']:>10.2f}")
    print(f"speed-up {speedup:.2f}x; max relative gradient difference {grad_rel:.2e}")
    print(f"peak RSS {peak_rss_mb():.0f} MiB")
    if args.json:
        args.json.write_text(
            json.dumps(
                {**results, "speedup": speedup, "grad_rel_diff": grad_rel, "args": vars(args)},
                default=str,
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
