"""``conversenet reproduce``: run the paper's tables on the datasets you have.

Finds the paper's test sets under each --data folder (Set12, BSD68, Set5, Set14, BSD100,
Urban100; names matched case-insensitively), runs every row whose weights and data are
available, and prints the results beside the paper's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.kernels import load_kernel
from ..evaluation import Protocol, evaluate, list_images
from ..models import create_model, get_model_info
from ..paper import paper_psnr
from ..weights import WeightsNotFoundError
from ._common import fail, select_device

# (model, task, datasets, setting(s), metric)
ROWS = (
    ("converse_dncnn", "denoise", ("Set12", "BSD68"), ("sigma25",), "psnr"),
    ("converse_srresnet", "sr", ("Set5", "Set14", "BSD100", "Urban100"), ("x4",), "psnr_y"),
    (
        "conversenet",
        "deblur",
        ("BSD100", "Urban100"),
        tuple(f"kernel{k}" for k in range(1, 6)),
        "psnr",
    ),
    (
        "converse_usrnet",
        "deblur_nonblind",
        ("BSD100", "Urban100"),
        tuple(f"kernel{k}" for k in range(1, 6)),
        "psnr",
    ),
)


def find_datasets(roots: list[Path]) -> dict[str, Path]:
    """Map lower-case dataset names to folders found directly under the roots."""
    found: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            raise ValueError(f"--data must be a folder, got {str(root)!r}")
        for child in sorted(root.iterdir()):
            if child.is_dir():
                found.setdefault(child.name.lower(), child)
    return found


def run(args: argparse.Namespace) -> int:
    try:
        device = select_device(args.device)
        datasets = find_datasets(args.data)
        table, records = [], []
        for model_name, task, names, settings, metric in ROWS:
            if args.models and model_name not in args.models:
                continue
            wanted = [(n, datasets[n.lower()]) for n in names if n.lower() in datasets]
            if not wanted:
                continue
            if task.startswith("deblur") and args.kernels is None:
                print(f"skip {model_name}: no --kernels folder given")
                continue
            try:
                model = create_model(model_name, pretrained=True, download=False).to(device)
            except WeightsNotFoundError as err:
                print(f"skip {model_name}: {err}")
                continue
            info = get_model_info(model_name)
            for dataset, folder in wanted:
                images = list_images(folder)[: args.limit]
                for setting in settings:
                    kernel = None
                    if setting.startswith("kernel"):
                        kernel = load_kernel(args.kernels / f"kernel_{setting[6:]}.npy")
                    protocol = Protocol(
                        task=task,
                        channels=info.in_channels,
                        scale=info.scale,
                        kernel=kernel,
                        kernel_name=setting,
                    )
                    res = evaluate(
                        model,
                        images,
                        protocol,
                        model_name=model_name,
                        dataset_name=dataset,
                        progress=not args.quiet,
                    )
                    ours, paper = res["mean"][metric], paper_psnr(model_name, dataset, setting)
                    table.append((model_name, dataset, setting, metric, ours, paper, len(images)))
                    records.append({**res, "setting": setting, "paper_psnr": paper})
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        return fail(err, args)

    if not table:
        print("nothing to run: no known dataset folder found under --data")
        return 1
    head = (
        f"{'model':<18} {'dataset':<9} {'setting':<8} {'metric':<7} {'ours':>6} "
        f"{'paper':>6} {'diff':>6} {'images':>6}"
    )
    print(head)
    print("-" * len(head))
    for model_name, dataset, setting, metric, ours, paper, n in table:
        paper_s = f"{paper:6.2f}" if paper is not None else "     -"
        diff_s = f"{ours - paper:+6.2f}" if paper is not None else "     -"
        print(
            f"{model_name:<18} {dataset:<9} {setting:<8} {metric:<7} {ours:6.2f} "
            f"{paper_s} {diff_s} {n:>6}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(records, indent=2))
    return 0
