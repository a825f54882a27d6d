"""``conversenet models``: list the registered models and whether their weights are available.

Lists every registered model with its task, scale and input channels, and whether its
pretrained weights were found locally (in $CONVERSENET_WEIGHTS or the cache); '*' marks
the default model of each task.
"""

from __future__ import annotations

import argparse
import json

from ..models import get_model_info, list_models
from ..tasks import TASK_REGISTRY
from ..weights import WeightsChecksumError, resolve_weights, weights_dir_candidates
from ._common import fail


def model_rows(task: str | None = None) -> list[dict]:
    """One dict per registered model: name, task, scale, channels, default, weights."""
    defaults = {spec.default_model for spec in TASK_REGISTRY.values()}
    rows = []
    for name in list_models():
        info = get_model_info(name)
        if task is not None and info.task != task:
            continue
        if not info.learned:
            weights, path = "not needed", None
        elif info.pretrained is None:
            weights, path = "none published", None
        else:
            try:
                path = str(resolve_weights(info.pretrained, download=False))
                weights = "packaged" if info.pretrained.packaged else "found"
            except WeightsChecksumError:
                weights, path = "corrupt", None
            except (FileNotFoundError, OSError):
                weights, path = "missing", None
        rows.append(
            {
                "name": name,
                "task": info.task,
                "scale": info.scale,
                "in_channels": info.in_channels,
                "default": name in defaults,
                "weights": weights,
                "weights_path": path,
                "weights_file": info.pretrained.filename if info.pretrained else None,
                "description": info.description,
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    try:
        rows = model_rows(args.task)
    except Exception as err:
        return fail(err, args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    headers = ("name", "task", "scale", "ch", "weights", "description")
    table = [
        (
            ("*" if r["default"] else " ") + r["name"],
            r["task"],
            f"x{r['scale']}" if r["task"] == "sr" else "-",
            str(r["in_channels"]),
            r["weights"],
            r["description"],
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers[:-1])]
    widths[0] = max(widths[0], len(headers[0]) + 1)

    def line(cells) -> str:
        head = "  ".join(f"{c:<{w}}" for c, w in zip(cells[:-1], widths, strict=True))
        return f"{head}  {cells[-1]}".rstrip()

    print(line((" " + headers[0], *headers[1:])))
    for row in table:
        print(line(row))
    missing = [r for r in rows if r["weights"] == "missing"]
    if missing:
        folders = ", ".join(str(p) for p in weights_dir_candidates())
        print(
            f"\nmissing weights are downloaded on first use, or put the files "
            f"({', '.join(r['weights_file'] for r in missing)}) in one of: {folders}; "
            "or set CONVERSENET_WEIGHTS to their folder"
        )
    return 0
