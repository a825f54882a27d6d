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
import hashlib
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from conversenet.training.checkpoint import export_weights


def read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata of a safetensors file."""
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
    return load_file(str(path)), metadata


def average(paths: list[Path]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The element-wise mean of the files' tensors (in float64, stored in each tensor's
    dtype) and the first file's metadata; ``ValueError`` if the files differ in model or
    tensors."""
    if len(paths) < 2:
        raise ValueError(f"expected at least 2 weight files, got {len(paths)}")
    first, meta = read(paths[0])
    total = {k: v.double() for k, v in first.items()}
    for path in paths[1:]:
        tensors, other = read(path)
        for key in ("model", "options"):
            if other.get(key) != meta.get(key):
                raise ValueError(
                    f"{path}: {key} {other.get(key)!r}, expected {meta.get(key)!r} "
                    f"(as in {paths[0]})"
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
    meta["averaged_from"] = ", ".join(hashlib.sha256(p.read_bytes()).hexdigest() for p in paths)
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
    meta.pop("format", None)
    export_weights(mean, args.out, meta)
    print(f"averaged {len(args.weights)} files into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
