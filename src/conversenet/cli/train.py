"""``conversenet train``: train a model from a YAML config.

What the run folder gets and how a run resumes: the command's ``--help``
(:data:`conversenet.cli.parsers.TRAIN`).

Examples::

    conversenet train configs/converse_dncnn_s25.yaml
    conversenet train configs/compact_denoiser_blind.yaml --set train.total_steps=2000 \\
        --set optim.lr=1e-3 --out runs/compact
    conversenet train configs/converse_dncnn_s25.yaml --resume          # newest valid checkpoint
    conversenet train configs/unet_denoiser_blind.yaml --time-limit 30  # a 30-minute sitting
    torchrun --nproc_per_node 4 -m conversenet.cli train configs/converse_srresnet_x4.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training import load_config, train
from ._common import fail


def run(args: argparse.Namespace) -> int:
    try:
        overrides = list(args.overrides)
        if args.time_limit is not None:
            overrides.append(f"train.time_limit_minutes={args.time_limit}")
        cfg = load_config(args.config, overrides)
        out = args.out
        if out is None:
            out = Path(cfg.train.out_dir) if cfg.train.out_dir else Path("runs") / args.config.stem
        summary = train(cfg, out, resume=args.resume, restart=args.restart)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        return fail(err, args)
    return 130 if summary.get("interrupted") else 0
