"""
Train a compact denoiser from a folder of images
================================================

Training is driven by a YAML config (the format of the files in ``configs/``): the model,
the folders of clean images, the degradation made on the fly, validation, the optimiser
and the length of the run. This script writes a small config, trains a compact blind
Converse denoiser with :func:`conversenet.training.train`, then restores a noisy image
with the weights it produced::

    python examples/train_compact_model.py --images my_clean_photos/ --steps 2000

The same run from the command line: ``conversenet train config.yaml --out runs/compact``.
Without ``--images`` the script cuts a folder of training images from the sample photo
(gray, its left two thirds; the right third is kept for the test). A real model needs
thousands of steps on a few hundred images (see ``configs/compact_denoiser_blind.yaml``):
the default run here takes seconds and only shows the loop working.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import conversenet
from conversenet.metrics import psnr
from conversenet.training import load_config, train

CONFIG = """\
task: denoise
model:
  name: converse_dncnn_compact         # a registered model, with smaller options
  options: {{num_features: 16, num_blocks: 2}}
data:
  train_dirs: [{images}]
  patch_size: 32
  batch_size: 8
  repeat: 16                           # patches per image and epoch
  num_workers: 0
  channels: 1
degradation:
  sigma_range: [5.0, 50.0]             # blind: a noise level drawn per patch
validation:
  dir: {validation}
  every: {steps}
  sigma: 25.0
optim:
  lr: 2.0e-3
  loss: l1
train:
  total_steps: {steps}
  seed: 0
  num_threads: 1
  log_every: 10
  checkpoint_every: {steps}
  tensorboard: false
  progress_bar: false
"""


def make_demo_folders(train_dir: Path, test_dir: Path) -> None:
    """Gray crops of the sample photo: four for training, one (held out) for testing."""
    gray = conversenet.sample_image().mean(axis=2).round().astype(np.uint8)
    train_dir.mkdir(parents=True, exist_ok=True)
    test_dir.mkdir(parents=True, exist_ok=True)
    for i, (top, left) in enumerate([(0, 0), (0, 64), (96, 0), (96, 64)]):
        crop = gray[top : top + 96, left : left + 64]
        conversenet.save_image(train_dir / f"train{i}.png", crop, overwrite=True)
    conversenet.save_image(test_dir / "test.png", gray[48:144, 128:192], overwrite=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="Train a compact denoiser from a config.")
    parser.add_argument("--images", type=Path, help="folder of clean training images")
    parser.add_argument("--test", type=Path, help="folder of clean test images")
    parser.add_argument("--steps", type=int, default=120, help="training steps")
    parser.add_argument("--out", type=Path, default=Path("runs/compact_example"))
    args = parser.parse_args(argv)
    if args.images is None:
        args.images, args.test = Path("train_images"), Path("held_out_images")
        make_demo_folders(args.images, args.test)
    args.test = args.test or args.images

    args.out.mkdir(parents=True, exist_ok=True)
    config_file = args.out.parent / f"{args.out.name}.yaml"
    config_file.write_text(
        CONFIG.format(images=args.images, validation=args.test, steps=args.steps)
    )
    cfg = load_config(config_file)  # typed and validated: a misspelt key is an error
    summary = train(cfg, args.out, restart=True)
    losses = [entry["loss"] for entry in summary["history"]["loss"]]
    print(f"trained {summary['step']} steps: L1 loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    print(f"weights: {summary['weights']}")

    # restore a held-out image with the new weights (the options are stored in the file)
    test_image = sorted(args.test.glob("*.png"))[0]
    clean = conversenet.load_image(test_image)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    restored = conversenet.restore(
        noisy, task="denoise", model="converse_dncnn_compact", weights=summary["weights"]
    )
    before, after = psnr(noisy, clean), psnr(restored, clean)
    print(f"{test_image.name}, noise σ 25: PSNR {before:.2f} -> {after:.2f} dB")
    return {"losses": losses, "psnr_noisy": before, "psnr_restored": after, **summary}


if __name__ == "__main__":
    main()
