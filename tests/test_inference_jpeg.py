"""Noisy colour JPEGs (issue #20): JPEG's chroma subsampling and compression change the
noise, the colour model does worse on such files, and the default route sends them to the
blind gray model, which restores the file's Y, Cb and Cr planes (Cb and Cr at their stored
resolution)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conversenet.colour import jpeg_ycbcr_to_rgb, rgb_to_jpeg_ycbcr
from conversenet.inference import Restorer, restore
from conversenet.io import load_image_with_info
from conversenet.metrics import psnr
from conversenet.tasks import get_task

from conftest import TinyConverseNet, noisy_sample_jpeg

GRAY = get_task("denoise").offline_model
COLOUR = get_task("denoise").colour_model
#: The gray route beats the colour model on the packaged photo with sigma 25 noise saved
#: at quality 92 by 5.6 dB (29.66 vs 24.08, conv_unet against conv_unet_colour; 3.0 dB,
#: 29.48 vs 26.48, with the compact models); over Set5 at quality 92, sigma 15-50, by
#: 4.1-5.4 dB (tools/jpeg_routes.py). The test asks for 1.5 dB.
MARGIN_DB = 1.5


def noisy_jpeg(folder: Path, sigma: float = 25, quality: int = 92, subsampling: int = 2):
    """(clean, decoded noisy JPEG, its ImageInfo)."""
    clean, path = noisy_sample_jpeg(folder, sigma, quality, subsampling)
    return (clean, *load_image_with_info(path))


@pytest.fixture(params=["official weights if present", "offline"])
def weights_setting(request, monkeypatch, tmp_path):
    if request.param == "offline":
        monkeypatch.setenv("CONVERSENET_WEIGHTS", str(tmp_path / "empty"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return request.param


def test_a_noisy_jpeg_goes_to_the_gray_model_which_beats_the_colour_model(
    tmp_path, weights_setting
):
    clean, image, info = noisy_jpeg(tmp_path)
    assert info.chroma_subsampling == (2, 2)
    restorer = Restorer("denoise", download=False)
    assert restorer.model_name_for(image, info.chroma_subsampling) == GRAY
    assert restorer.model_name_for(image) == COLOUR  # not known to be a JPEG
    routed, notes = restorer(image, chroma_subsampling=info.chroma_subsampling)
    colour, colour_notes = Restorer("denoise", colour_route="colour", download=False)(
        image, chroma_subsampling=info.chroma_subsampling
    )
    assert psnr(routed, clean) > psnr(colour, clean) + MARGIN_DB
    assert any(
        "a JPEG with 4:2:0 chroma" in n and GRAY in n and "colour_route 'colour'" in n
        for n in notes
    )
    assert any("Y, Cb and Cr planes" in n and "stored resolution (4:2:0)" in n for n in notes)
    assert any(COLOUR in n and "as colour_route 'colour' asks" in n for n in colour_notes)


def test_full_chroma_jpegs_and_pngs_stay_with_the_colour_model(tmp_path):
    _clean, image, info = noisy_jpeg(tmp_path, subsampling=0)
    assert info.chroma_subsampling == (1, 1)
    restorer = Restorer("denoise", download=False)
    assert restorer.model_name_for(image, info.chroma_subsampling) == COLOUR
    assert restorer.model_name_for(image, None) == COLOUR
    assert restorer.model_name_for(image[..., 0], (2, 2)) != COLOUR  # gray: no route


def test_the_gray_route_can_be_forced_for_any_colour_image(tmp_path):
    _clean, image, _info = noisy_jpeg(tmp_path, subsampling=0)
    restorer = Restorer("denoise", colour_route="gray", download=False)
    assert restorer.model_name_for(image) == GRAY
    _out, notes = restorer(image[:48, :48])
    assert any(GRAY in n and "as colour_route 'gray' asks" in n for n in notes)
    assert any("opponent colour basis" in n for n in notes)


@pytest.mark.parametrize("shape", [(64, 64), (21, 27)])
def test_a_gray_model_restores_a_jpegs_planes_at_their_stored_resolution(shape):
    net = TinyConverseNet(1).eval()
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    restorer = Restorer("denoise", net, tile=None)
    out, notes = restorer(image, chroma_subsampling=(2, 2))
    assert any("Y, Cb and Cr planes" in n for n in notes)
    x = rgb_to_jpeg_ycbcr(torch.from_numpy(image.transpose(2, 0, 1) / 255.0).float()[None])
    with torch.no_grad():
        planes = [net(x[:, :1])]
        for c in (1, 2):
            small = F.avg_pool2d(x[:, c : c + 1], 2, ceil_mode=True)
            up = F.interpolate(net(small), scale_factor=2, mode="bilinear")
            planes.append(up[..., : shape[0], : shape[1]])
    expected = np.rint(jpeg_ycbcr_to_rgb(torch.cat(planes, 1))[0].clamp(0, 1).numpy() * 255)
    assert np.abs(out.astype(float) - expected.transpose(1, 2, 0)).max() <= 1
    assert restorer.passes(image, (2, 2)) == 3  # one pass per plane, no tiling


def test_passes_count_the_chroma_planes_at_their_resolution():
    restorer = Restorer("denoise", TinyConverseNet(1), tile=64, tile_overlap=8)
    image = np.zeros((200, 120, 3), np.uint8)
    image[..., 0] = 1  # colour
    full, half = restorer.runner.passes(200, 120), restorer.runner.passes(100, 60)
    assert (full, half) == (8, 2)
    assert restorer.passes(image, (2, 2)) == full + 2 * half
    assert restorer.passes(image) == 3 * full


def test_a_colour_model_named_for_a_jpeg_says_the_gray_model_does_better(tmp_path):
    _clean, image, info = noisy_jpeg(tmp_path)
    restorer = Restorer("denoise", COLOUR, download=False)
    _out, notes = restorer(image[:48, :48], chroma_subsampling=info.chroma_subsampling)
    assert any("a JPEG with 4:2:0 chroma" in n and GRAY in n and "do worse" in n for n in notes)
    _out, notes = restorer(image[:48, :48])
    assert not any("JPEG" in n for n in notes)


def test_restore_reads_the_subsampling_of_a_pil_jpeg(tmp_path):
    _clean, image, _info = noisy_jpeg(tmp_path)
    note = f"a JPEG with 4:2:0 chroma: restored by {GRAY}"
    with Image.open(noisy_sample_jpeg(tmp_path)[1]) as img, pytest.warns(UserWarning, match=note):
        out = restore(img, "denoise", download=False)
    assert out.size == (image.shape[1], image.shape[0])
    with pytest.warns(UserWarning, match="a JPEG with 4:2:2 chroma"):
        restore(image[:40, :40], "denoise", download=False, chroma_subsampling=(1, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restore(image[:40, :40], "denoise", download=False)
    assert any(COLOUR in str(w.message) for w in caught)


@pytest.mark.parametrize(
    ("options", "call", "message"),
    [
        ({"colour_route": "grey"}, {}, r"colour_route must be one of \('auto', 'colour', 'gray'\)"),
        ({"model": GRAY, "colour_route": "gray"}, {}, f"does not apply to {GRAY}"),
        ({}, {"chroma_subsampling": (2,)}, r"\(vertical, horizontal\) factors"),
        ({}, {"chroma_subsampling": (0, 2)}, r"factors >= 1.*got \(0, 2\)"),
        ({}, {"chroma_subsampling": "4:2:0"}, "such as \\(2, 2\\) for 4:2:0"),
    ],
)
def test_bad_routes_and_subsamplings_are_refused(options, call, message):
    with pytest.raises(ValueError, match=message):
        Restorer("denoise", download=False, **options)(np.zeros((8, 8, 3), np.uint8), **call)
