"""Average the weights of runs of one model (a "model soup"; not part of the package).

Runs forked from one checkpoint and trained on with different data orders stay in one
basin of the loss, so the mean of their weights is a model too, often a little better than
each. The files are the runs' exported ``model.safetensors`` (EMA weights); they must hold
the same model (metadata ``model`` and ``options``) with the same tensors. The first
file's metadata is kept, with ``averaged_from`` (the inputs' SHA-256) added::

    python tools/average_weights.py runs/sr_s6/model.safetensors \\
        runs/sr_s6b/model.safetensors --out runs/sr_soup.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors import safe_open

from conversenet.training.checkpoint import export_weights
from conversenet.weights import load_state_dict, saved_model_options, sha256sum


def average(paths: list[Path]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The element-wise mean of the files' tensors (in float64, stored in each tensor's
    dtype) and the first file's metadata; ``ValueError`` if a file is unreadable or the
    files differ in model or tensors."""
    if len(paths) < 2:
        raise ValueError(f"expected at least 2 weight files, got {len(paths)}")
    first, model = load_state_dict(paths[0]), saved_model_options(paths[0])
    total = {k: v.double() for k, v in first.items()}
    for path in paths[1:]:
        tensors, other = load_state_dict(path), saved_model_options(path)
        if other != model:
            raise ValueError(
                f"{path}: model and options {other}, expected {model} (as in {paths[0]})"
            )
        if tensors.keys() != first.keys():
            diff = sorted(tensors.keys() ^ first.keys())[:3]
            raise ValueError(f"{path}: tensors differ from {paths[0]}'s: {diff}")
        for key, value in tensors.items():
            if value.shape != first[key].shape:
                raise ValueError(
                    f"{path}: {key} has shape {tuple(value.shape)}, "
                    f"expected {tuple(first[key].shape)}"
                )
            total[key] += value.double()
    mean = {k: (v / len(paths)).to(first[k].dtype) for k, v in total.items()}
    with safe_open(str(paths[0]), framework="pt") as f:
        meta = dict(f.metadata() or {})
    meta.pop("format", None)
    meta["averaged_from"] = ", ".join(sha256sum(p) for p in paths)
    return mean, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", nargs="+", type=Path, help="safetensors weight files")
    parser.add_argument("--out", type=Path, required=True, help="the averaged weights")
    args = parser.parse_args(argv)
    if args.out.resolve() in {p.resolve() for p in args.weights}:
        parser.error(f"--out {args.out} is one of the inputs; choose a new file")
    try:
        mean, meta = average(args.weights)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    export_weights(mean, args.out, meta)
    print(f"averaged {len(args.weights)} files into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
