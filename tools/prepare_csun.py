"""Make the colour training folders of the compact models from CSun_Hays80 (not committed).

CSun_Hays80's 80 photos are JPEGs with 4:2:0 chroma subsampling (chroma at half
resolution) and visible 8x8-block compression. Training a colour denoiser on them as they
are teaches it that chroma is always smooth, which does not hold on uncompressed images
such as Set5. Downscaling by 2 (MATLAB bicubic, antialiased) brings the chroma back to
full resolution and attenuates the block artefacts, so the training folder is:

* ``OUT/csun_train70``: symlinks to the first 70 photos (sorted by name), full size;
* ``OUT/csun_train70_half``: the same 70 photos downscaled by 2, as PNG;
* ``OUT/csun_test10``: symlinks to the last 10 photos (held out for evaluation);
* ``OUT/csun_test10_crop256``: the centre 256×256 of each held-out photo, as PNG (the
  quick validation set of training runs: about a tenth of the pixels).

    python tools/prepare_csun.py --src ../shared/data/CSun_Hays80 --out runs/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from conversenet.data.imresize import imresize
from conversenet.evaluation import list_images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", type=Path, default=Path("../shared/data/CSun_Hays80"))
    p.add_argument("--out", type=Path, default=Path("runs/data"))
    p.add_argument("--train", type=int, default=70)
    p.add_argument("--crop", type=int, default=256, help="side of the validation crops")
    args = p.parse_args()
    paths = list_images(args.src)
    if len(paths) < args.train:
        raise SystemExit(f"{args.src} has {len(paths)} images, fewer than {args.train}")
    train, test = paths[: args.train], paths[args.train :]
    for name, group in (("csun_train70", train), ("csun_test10", test)):
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for path in group:
            link = folder / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
    crops = args.out / f"csun_test10_crop{args.crop}"
    crops.mkdir(parents=True, exist_ok=True)
    for path in test:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        top, left = (rgb.height - args.crop) // 2, (rgb.width - args.crop) // 2
        rgb.crop((left, top, left + args.crop, top + args.crop)).save(crops / (path.stem + ".png"))
    half = args.out / "csun_train70_half"
    half.mkdir(parents=True, exist_ok=True)
    for path in train:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
        small = imresize(rgb, 0.5)
        img = np.uint8(np.clip(np.round(small * 255.0), 0, 255))
        Image.fromarray(img).save(half / (path.stem + ".png"))
    print(f"{len(train)} training photos (+ halved copies), {len(test)} held out, in {args.out}")


if __name__ == "__main__":
    main()
