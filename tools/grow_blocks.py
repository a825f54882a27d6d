"""Deepen a trained block model without changing what it computes (not part of the package).

The model's body ``conv_body`` (a sequence of two-branch blocks, each ``x + f(x)`` twice)
goes from its trained depth to ``--blocks``: the trained blocks keep their order, spread
evenly over the new depth, and every new block is the identity at first, because the last
1×1 convolution of each of its branches is zero (weights and bias). The rest of the model
is copied as it is. The result is checked to give the trained model's output, then
written as safetensors, for ``model.init_weights`` of a training config with
``model.options: {num_blocks: N}``::

    python tools/grow_blocks.py --model converse_srresnet_compact \\
        --weights runs/sr_s3a/model.safetensors --blocks 16 --out runs/init/sr16.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from conversenet.models import create_model
from conversenet.training.checkpoint import export_weights
from conversenet.weights import load_state_dict

BODY = "conv_body"


def trained_positions(old: int, new: int) -> list[int]:
    """Where the ``old`` trained blocks go among ``new`` blocks: spread evenly, in order."""
    return [i * new // old for i in range(old)]


def trained_depth(state: dict[str, torch.Tensor]) -> int:
    """The number of body blocks in a state dict."""
    return len({k.split(".")[1] for k in state if k.startswith(BODY + ".")})


def zero_branch_ends(block: nn.Module) -> None:
    """Make a two-branch block the identity: zero the last layer of each branch."""
    for branch in (block.conv1, block.conv2):
        nn.init.zeros_(branch[-1].weight)
        nn.init.zeros_(branch[-1].bias)


def grow(name: str, state: dict[str, torch.Tensor], blocks: int, seed: int = 0) -> nn.Module:
    """The model ``name`` with ``blocks`` body blocks holding the trained ``state``."""
    old = trained_depth(state)
    if blocks < old:
        raise SystemExit(f"--blocks must be at least the trained depth {old}, got {blocks}")
    torch.manual_seed(seed)
    model = create_model(name, num_blocks=blocks)
    for block in model.conv_body:
        zero_branch_ends(block)
    mapping = dict(zip(range(old), trained_positions(old, blocks), strict=True))
    grown = {}
    for key, value in state.items():
        if key.startswith(BODY + "."):
            _, index, rest = key.split(".", 2)
            key = f"{BODY}.{mapping[int(index)]}.{rest}"
        grown[key] = value
    missing = model.load_state_dict(grown, strict=False)
    new_keys = {k for k in model.state_dict() if k.startswith(BODY + ".")} - set(grown)
    if set(missing.missing_keys) != new_keys or missing.unexpected_keys:
        raise SystemExit(f"weights do not fit {name}: {missing}")
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="registry name")
    p.add_argument("--weights", type=Path, required=True, help="the trained weights")
    p.add_argument("--blocks", type=int, required=True, help="body blocks of the result")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    state = load_state_dict(args.weights)
    old = trained_depth(state)
    trained = create_model(args.model, num_blocks=old)
    trained.load_state_dict(state)
    model = grow(args.model, state, args.blocks)
    x = torch.rand(1, trained.in_channels, 24, 24)
    with torch.no_grad():
        err = (model.eval()(x) - trained.eval()(x)).abs().max().item()
    if err > 1e-5:
        raise SystemExit(f"the grown model differs from the trained one by {err:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export_weights(
        model.state_dict(), args.out, {"model": args.model, "options": {"num_blocks": args.blocks}}
    )
    print(f"{args.out}: {old} -> {args.blocks} blocks, output unchanged (max diff {err:.1e})")


if __name__ == "__main__":
    main()
