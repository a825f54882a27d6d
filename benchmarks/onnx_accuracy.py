"""ONNX export accuracy: onnxruntime against PyTorch for the operator and every model.

Prints a Markdown table of the largest absolute difference between onnxruntime (CPU) and
PyTorch on random [0, 1] images, for

* the Converse2D operator, s = 1, 2, 3 and every padding mode (4 channels, kernel 5,
  padding 2, regulariser biases drawn in [-3, 3]), fixed size and dynamic;
* every registered model in a small configuration (2 blocks, 8 features; every
  parameter randomised), fixed size at two sizes and dynamic checked at two sizes;
* the four paper models with their official weights (``--official``; needs
  ``CONVERSENET_WEIGHTS``), fixed size at two sizes and dynamic.

``--quick``: the s = 2 circular operator case, fixed size, and a smaller Converse-DnCNN
(1 block, 4 features) at one size.

    CONVERSENET_WEIGHTS=../shared/weights/official python -m benchmarks.onnx_accuracy --official
"""

from __future__ import annotations

import inspect
import itertools
import logging
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

import conversenet
from benchmarks import harness
from conversenet import Converse2D
from conversenet import functional as CF
from conversenet.export import export_model, export_module

PAPER = ("converse_dncnn", "converse_srresnet", "conversenet", "converse_usrnet")


def small_options(name: str, quick: bool = False) -> dict[str, int]:
    """A narrow, shallow configuration of a registered model (the architecture, not the size);
    ``quick``: narrower and shallower still."""
    params = inspect.signature(conversenet.get_model_info(name).builder).parameters
    shrink = {"num_features": 8, "num_blocks": 2, "num_iterations": 2, "depth": 3}
    if quick:
        shrink.update(num_features=4, num_blocks=1)
    return {key: value for key, value in shrink.items() if key in params}


def randomised_weights(name: str, folder: Path, quick: bool) -> Path:
    model = conversenet.create_model(name, **small_options(name, quick))
    gen = torch.Generator().manual_seed(len(name))
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=gen))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.uniform_(0.5, 1.5, generator=gen)
    path = folder / f"{name}_random.pth"  # not the official name (that is SHA-checked)
    torch.save(model.state_dict(), path)
    return path


def operator_rows(folder: Path, quick: bool):
    """(case, dynamic, sizes checked, max abs diff) of the Converse2D cases."""
    cases = [(2, "circular", False)] if quick else (
        (scale, mode, dynamic)
        for scale, mode in itertools.product((1, 2, 3), CF.PADDING_MODES)
        for dynamic in (False, True)
    )  # fmt: skip
    for scale, mode, dynamic in cases:
        torch.manual_seed(scale)
        layer = Converse2D(4, 4, 5, scale, 2, mode).eval()
        with torch.no_grad():
            layer.bias.uniform_(-3, 3)
        report = export_module(
            layer,
            folder / "op.onnx",
            (torch.rand(1, 4, 18, 21),),
            dynamic=dynamic,
            check_sizes=[(18, 21), (33, 27)] if dynamic else [(18, 21)],
        )
        yield f"Converse2D s={scale} {mode}", dynamic, report.checked_sizes, report.max_abs_error


def model_rows(folder: Path, names, plans, official: bool, quick: bool = False):
    """The same for models: ``plans`` are (dynamic, input sizes) pairs."""
    for name in names:
        weights = None if official else randomised_weights(name, folder, quick)
        scale = 1 if conversenet.get_model_info(name).task == "sr" or not official else 2
        for dynamic, sizes in plans:
            checked, worst = [], 0.0
            for h, w in sizes:
                report = export_model(
                    name, folder / f"{name}.onnx", weights=weights, height=scale * h,
                    width=scale * w, dynamic=dynamic,
                    overrides=None if official else small_options(name, quick),
                )  # fmt: skip
                checked += report.checked_sizes
                worst = max(worst, report.max_abs_error)
            kind = "official weights" if official else "small"
            yield f"{name} ({kind})", dynamic, checked, worst


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.Parser(__doc__, __spec__.name, repeats=None, warmup=None)
    parser.add_argument("--official", action="store_true", help="also the paper models")
    parser.add_argument("--skip-small", action="store_true", help="skip the small models")
    args = parser.parse_args(argv)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    learned = [n for n in conversenet.list_models() if conversenet.get_model_info(n).learned]
    small = ["converse_dncnn"] if args.quick else learned  # (classical methods: no export)
    small_plans = [(False, [(24, 20)])] if args.quick else [
        (False, [(24, 20), (32, 32)]), (True, [(24, 20)])
    ]  # fmt: skip
    results = harness.Results(args.benchmark)
    print(harness.run_header("onnxruntime against PyTorch, random [0, 1] inputs"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        found = [operator_rows(folder, args.quick)]
        if not args.skip_small:
            found.append(model_rows(folder, small, small_plans, official=False, quick=args.quick))
        if args.official:
            plans = [(False, [(32, 32), (48, 64)]), (True, [(32, 32)])]
            found.append(model_rows(folder, PAPER, plans, official=True))
        for row in itertools.chain(*found):
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    table = []
    for case, dynamic, sizes, error in rows:
        shape = "dynamic" if dynamic else "fixed"
        checked = ", ".join(f"{h}x{w}" for h, w in sizes)
        results.add(case, shape, max_abs_diff=error, sizes_checked=checked)
        table.append((case, shape, checked, f"{error:.1e}"))
    headers = ("model / operator case", "shape", "input sizes checked", "max abs diff")
    print(harness.markdown_table(headers, table), end="")
    return results.finish(args.json)


if __name__ == "__main__":
    sys.exit(main())
