"""``conversenet train``: train a model from a YAML config.

Train a model from a YAML config (see configs/). The run folder gets the resolved
config.yaml, train.log, metrics.csv (validation PSNR against training hours), checkpoints,
last_small.pt (the newest state in half precision, small enough to commit: a run continues
from it on another machine) and the final model.safetensors. A run folder that already
holds checkpoints is resumed from the newest valid one. Ctrl-C saves a checkpoint and
stops. Launch with torchrun for data-parallel training (NCCL on GPU, gloo on CPU).

Examples::

    conversenet train configs/converse_dncnn_s25.yaml
    conversenet train configs/compact_denoiser_blind.yaml --set train.total_steps=2000 \\
        --set optim.lr=1e-3 --out runs/compact
    conversenet train configs/converse_dncnn_s25.yaml --resume          # newest valid checkpoint
    torchrun --nproc_per_node 4 -m conversenet.cli train configs/converse_srresnet_x4.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training import load_config, train
from ._common import fail


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config, args.overrides)
        out = args.out
        if out is None:
            out = Path(cfg.train.out_dir) if cfg.train.out_dir else Path("runs") / args.config.stem
        summary = train(cfg, out, resume=args.resume, restart=args.restart)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        return fail(err, args)
    return 130 if summary.get("interrupted") else 0
