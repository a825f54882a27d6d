"""Save, or compare against a saved file, the outputs of every registered model with weights.

A refactoring must not change what the models compute. Before the change::

    python tools/model_outputs.py save before.npz

after it::

    python tools/model_outputs.py compare before.npz   # exit 1 unless bit-identical

(a model registered since the file was saved is listed, not compared).

The official models need ``$CONVERSENET_WEIGHTS`` (or ``--weights``) naming the folder with
their checkpoints; models whose weights are not found are left out and said so. Inputs are
seeded crops (64×64, 16×16 for SR), so the figures are the same on every run of one build.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

from conversenet.models import create_model, get_model_info, list_models
from conversenet.tasks import call_model, get_task
from conversenet.weights import WeightsNotFoundError


def _inputs(info) -> tuple[torch.Tensor, torch.Tensor | None]:
    gen = torch.Generator().manual_seed(0)
    size = 16 if info.task == "sr" else 64
    x = torch.rand(1, info.in_channels, size, size, generator=gen)
    kernel = None
    if get_task(info.task).takes_kernel:
        kernel = torch.softmax(torch.randn(1, 49, generator=gen), -1).view(1, 1, 7, 7)
    return x, kernel


def outputs(names: list[str]) -> dict[str, np.ndarray]:
    torch.set_num_threads(1)
    result = {}
    for name in names:
        info = get_model_info(name)
        try:
            model = create_model(name, pretrained=True, download=False, progress=False).eval()
        except WeightsNotFoundError:
            print(f"{name}: weights not found, left out", file=sys.stderr)
            continue
        x, kernel = _inputs(info)
        with torch.inference_mode():
            result[name] = call_model(model, x, kernel).numpy()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("save", "compare"))
    parser.add_argument("file")
    parser.add_argument("--weights", help="folder of the official checkpoints")
    args = parser.parse_args(argv)
    if args.weights:
        os.environ["CONVERSENET_WEIGHTS"] = args.weights
    names = [
        n for n in list_models() if get_model_info(n).pretrained or not get_model_info(n).learned
    ]
    current = outputs(names)
    if args.action == "save":
        np.savez(args.file, **current)
        print(f"saved the outputs of {len(current)} models to {args.file}")
        return 0
    saved = dict(np.load(args.file))
    failed = False
    for name in sorted(set(saved) | set(current)):
        if name not in saved:  # a model added since: nothing to compare it with
            print(f"{name}: new in this build, not compared")
            continue
        if name not in current:
            print(f"{name}: only in the file")
            failed = True
            continue
        same = saved[name].shape == current[name].shape and np.array_equal(
            saved[name], current[name]
        )
        diff = 0.0 if same else float(np.abs(saved[name] - current[name]).max())
        print(f"{name}: {'bit-identical' if same else f'DIFFERS (max abs {diff:.3g})'}")
        failed |= not same
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
