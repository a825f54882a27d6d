"""Without the official weights (and without network), every task falls back to a model
that ships inside the package, and colour images are denoised by the colour model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import conversenet
import conversenet.weights as cw
from conversenet.cli import main
from conversenet.io import load_image, save_image
from conversenet.metrics import psnr
from conversenet.samples import demo_kernel, sample_image
from conversenet.tasks import COMMAND_TASKS, get_task


def _no_official_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVERSENET_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _noisy_crop():
    clean = sample_image()[32:96, 32:96].mean(axis=2).round().astype(np.uint8)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    return clean, noisy


def test_packaged_weights_are_found_without_any_folder(monkeypatch, tmp_path):
    _no_official_weights(monkeypatch, tmp_path)
    info = conversenet.get_model_info("converse_dncnn_compact")
    path = cw.resolve_weights(info.pretrained, download=False)
    assert path.parent == cw.PACKAGED_WEIGHTS_DIR
    assert cw.sha256sum(path) == info.pretrained.sha256


def test_restore_falls_back_to_the_packaged_denoiser(monkeypatch, tmp_path):
    _no_official_weights(monkeypatch, tmp_path)
    clean, noisy = _noisy_crop()
    restorer = conversenet.inference.Restorer(task="denoise", download=False)
    offline = get_task("denoise").offline_model
    assert restorer.model_name == offline
    assert any(offline in note for note in restorer.notes)
    denoised = restorer(noisy)[0]
    assert psnr(denoised, clean) > psnr(noisy, clean) + 5


def test_denoise_command_works_offline_with_a_note(tmp_path):
    clean, noisy = _noisy_crop()
    src = save_image(tmp_path / "noisy.png", noisy)
    env = {
        **os.environ,
        "CONVERSENET_WEIGHTS": str(tmp_path / "empty"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    cmd = [
        sys.executable,
        "-m",
        "conversenet.cli",
        "denoise",
        str(src),
        "-o",
        str(tmp_path / "out"),
        "--no-download",
        "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert get_task("denoise").offline_model in proc.stderr
    denoised = load_image(tmp_path / "out" / "noisy.png")
    assert psnr(denoised, clean) > psnr(noisy, clean) + 5


def _noisy_colour_crop(sigma: float = 25.0):
    clean = sample_image()[32:128, 32:128]
    rng = np.random.default_rng(1)
    noise = rng.normal(0, sigma, clean.shape)
    return clean, np.clip(clean + noise, 0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("task", [*COMMAND_TASKS, "deblur_nonblind"])
def test_every_task_has_a_model_that_needs_no_download(task):
    spec = get_task(task)
    for name in filter(None, (spec.offline_model, spec.colour_model)):
        info = conversenet.get_model_info(name)
        assert info.task == task
        if info.pretrained is None:
            assert not info.learned  # a classical model: nothing to download
            continue
        assert info.pretrained.url is None and info.pretrained.packaged
        path = cw.PACKAGED_WEIGHTS_DIR / info.pretrained.filename
        assert path.stat().st_size <= 2_000_000
        assert cw.sha256sum(path) == info.pretrained.sha256
        assert info.pretrained.license.startswith("Apache-2.0")


def test_a_colour_image_is_denoised_by_the_colour_model(monkeypatch, tmp_path):
    _no_official_weights(monkeypatch, tmp_path)
    clean, noisy = _noisy_colour_crop()
    restorer = conversenet.inference.Restorer(task="denoise", sigma=15, download=False)
    colour = get_task("denoise").colour_model
    assert restorer.model_name_for(noisy) == colour
    assert restorer.model_name_for(noisy[..., 0]) == get_task("denoise").offline_model
    denoised, notes = restorer(noisy)
    assert denoised.shape == noisy.shape and denoised.dtype == np.uint8
    assert psnr(denoised, clean) > psnr(noisy, clean) + 6
    assert any(colour in note and "colour model" in note for note in notes)
    assert any("blind denoiser" in note and "sigma 15" in note for note in notes)


def test_a_gray_model_named_for_a_colour_image_runs_per_channel(monkeypatch, tmp_path):
    _no_official_weights(monkeypatch, tmp_path)
    _clean, noisy = _noisy_colour_crop()
    restorer = conversenet.inference.Restorer("denoise", "converse_dncnn_compact", download=False)
    assert restorer.model_name_for(noisy) == "converse_dncnn_compact"
    _denoised, notes = restorer(noisy)
    assert any("each colour channel" in note for note in notes)


def test_gray_images_use_the_official_model_when_its_weights_are_present():
    folder = os.environ.get("CONVERSENET_WEIGHTS")
    if not folder or not (Path(folder) / "converse_dncnn.pth").is_file():
        pytest.skip("official weights not available (set CONVERSENET_WEIGHTS)")
    restorer = conversenet.inference.Restorer(task="denoise", download=False)
    _clean, noisy = _noisy_colour_crop()
    assert restorer.model_name_for(noisy[..., 1]) == "converse_dncnn"
    assert restorer.model_name_for(noisy) == get_task("denoise").colour_model


def test_sr_falls_back_to_its_offline_model(monkeypatch, tmp_path):
    _no_official_weights(monkeypatch, tmp_path)
    restorer = conversenet.inference.Restorer(task="sr", download=False)
    assert restorer.model_name == get_task("sr").offline_model
    assert any("offline model" in note for note in restorer.notes)
    out, _ = restorer(sample_image()[:64, :64])
    assert out.shape == (64 * restorer.scale, 64 * restorer.scale, 3)


def test_blind_deblurring_offline_refuses_and_suggests_the_kernel(monkeypatch, tmp_path, capsys):
    """Before: the offline default (conversenet_compact) made most blurred photos worse
    than the input, with no word (issue #24)."""
    _no_official_weights(monkeypatch, tmp_path)
    with pytest.raises(cw.WeightsNotFoundError, match=r"(?s)conversenet\.pth.*No offline model"):
        conversenet.inference.Restorer(task="deblur", download=False)
    with pytest.raises(cw.WeightsNotFoundError, match=r"worse than the blurred input.*--kernel"):
        conversenet.inference.Restorer(task="deblur", download=False)
    save_image(tmp_path / "blurry.png", sample_image()[:64, :64])
    out = tmp_path / "out"
    code = main(["deblur", str(tmp_path / "blurry.png"), "-o", str(out), "--no-download", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and "No offline model deblurs" in err and "--kernel FILE" in err
    assert "--model conv_unet_deblur" in err  # the best blind model, opt-in
    assert not out.exists() or not any(out.iterdir())


def test_non_blind_deblurring_falls_back_to_wiener(monkeypatch, tmp_path):
    _no_official_weights(monkeypatch, tmp_path)
    restorer = conversenet.inference.Restorer("deblur", kernel=demo_kernel(), download=False)
    assert restorer.model_name == "wiener"
