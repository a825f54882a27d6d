"""ONNX export accuracy: onnxruntime against PyTorch for the operator and every model.

Prints a Markdown table of the largest absolute difference between onnxruntime (CPU) and
PyTorch on random [0, 1] images, for

* the Converse2D operator, s = 1, 2, 3 and every padding mode (4 channels, kernel 5,
  padding 2, regulariser biases drawn in [-3, 3]), fixed size and dynamic;
* every registered model in a small configuration (2 blocks, 8 features; every
  parameter randomised), fixed size at two sizes and dynamic checked at two sizes;
* the four paper models with their official weights (``--official``; needs
  ``CONVERSENET_WEIGHTS``), fixed size at two sizes and dynamic.

    CONVERSENET_WEIGHTS=../shared/weights/official python benchmarks/onnx_accuracy.py --official
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import torch

import conversenet
from conversenet import Converse2D
from conversenet import functional as CF
from conversenet.export import export_model, export_module


def small_options(name: str) -> dict[str, int]:
    """A narrow, shallow configuration of a registered model (the architecture, not the size)."""
    params = inspect.signature(conversenet.get_model_info(name).builder).parameters
    shrink = {"num_features": 8, "num_blocks": 2, "num_iterations": 2, "depth": 3}
    return {key: value for key, value in shrink.items() if key in params}


PAPER = ("converse_dncnn", "converse_srresnet", "conversenet", "converse_usrnet")


def randomised_weights(name: str, folder: Path) -> Path:
    model = conversenet.create_model(name, **small_options(name))
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


def sizes_text(sizes) -> str:
    return ", ".join(f"{h}x{w}" for h, w in sizes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", action="store_true", help="also the paper models")
    parser.add_argument("--skip-small", action="store_true", help="skip the small models")
    args = parser.parse_args()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp(prefix="onnx_accuracy_"))
    rows = []

    for scale, mode in itertools.product((1, 2, 3), CF.PADDING_MODES):
        torch.manual_seed(scale)
        layer = Converse2D(4, 4, 5, scale, 2, mode).eval()
        with torch.no_grad():
            layer.bias.uniform_(-3, 3)
        for dynamic in (False, True):
            report = export_module(
                layer,
                folder / "op.onnx",
                (torch.rand(1, 4, 18, 21),),
                dynamic=dynamic,
                check_sizes=[(18, 21), (33, 27)] if dynamic else [(18, 21)],
            )
            rows.append(
                (
                    f"Converse2D s={scale} {mode}",
                    dynamic,
                    report.checked_sizes,
                    report.max_abs_error,
                )
            )
            print(rows[-1], file=sys.stderr, flush=True)

    if not args.skip_small:
        for name in conversenet.list_models():
            if not conversenet.get_model_info(name).learned:
                continue  # a classical method: nothing to export
            weights = randomised_weights(name, folder)
            for dynamic, sizes in ((False, [(24, 20), (32, 32)]), (True, [(24, 20)])):
                checked, worst = [], 0.0
                for h, w in sizes:
                    report = export_model(
                        name,
                        folder / f"{name}.onnx",
                        weights=weights,
                        height=h,
                        width=w,
                        dynamic=dynamic,
                        overrides=small_options(name),
                    )
                    checked += report.checked_sizes
                    worst = max(worst, report.max_abs_error)
                rows.append((f"{name} (small)", dynamic, checked, worst))
                print(rows[-1], file=sys.stderr, flush=True)

    if args.official:
        for name in PAPER:
            sr = conversenet.get_model_info(name).task == "sr"
            for dynamic, sizes in ((False, [(32, 32), (48, 64)]), (True, [(32, 32)])):
                if not sr:
                    sizes = [(2 * h, 2 * w) for h, w in sizes]
                checked, worst = [], 0.0
                for h, w in sizes:
                    report = export_model(
                        name, folder / f"{name}.onnx", height=h, width=w, dynamic=dynamic
                    )
                    checked += report.checked_sizes
                    worst = max(worst, report.max_abs_error)
                rows.append((f"{name} (official weights)", dynamic, checked, worst))
                print(rows[-1], file=sys.stderr, flush=True)

    print("| model / operator case | shape | input sizes checked | max abs diff |")
    print("|---|---|---|---|")
    for case, dynamic, sizes, error in rows:
        shape = "dynamic" if dynamic else "fixed"
        print(f"| {case} | {shape} | {sizes_text(sizes)} | {error:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
