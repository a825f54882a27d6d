"""Without the official weights (and without network), denoising falls back to the compact
blind denoiser whose weights ship inside the package."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

import conversenet
import conversenet.weights as cw
from conversenet.io import load_image, save_image
from conversenet.metrics import psnr
from conversenet.samples import sample_image


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
    assert restorer.model_name == "converse_dncnn_compact"
    assert any("converse_dncnn_compact" in note for note in restorer.notes)
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
    assert "converse_dncnn_compact" in proc.stderr
    denoised = load_image(tmp_path / "out" / "noisy.png")
    assert psnr(denoised, clean) > psnr(noisy, clean) + 5
