"""Tests of conversenet.inference: Restorer and restore() on arrays and PIL images."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import conversenet
from conversenet.colour import opponent_to_rgb, rgb_to_opponent
from conversenet.data.imresize import imresize
from conversenet.evaluation import Protocol, degrade
from conversenet.inference import Restorer, load_model, restore
from conversenet.metrics import psnr
from conversenet.models import create_model, get_model_info
from conversenet.runner import PerChannel, tiled_apply
from conversenet.samples import sample_image
from conversenet.tasks import COMMAND_TASKS, get_task
from conversenet.training.checkpoint import export_weights

from conftest import TinyConverseNet, need_shared, official_weights


# ---------------------------------------------------------------------------------------
# Restorer with simple modules
# ---------------------------------------------------------------------------------------
def test_gray_model_on_rgb_restores_each_opponent_channel():
    net = TinyConverseNet(1).eval()
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    out, notes = Restorer("denoise", net)(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert any("each colour channel" in n and "opponent colour basis" in n for n in notes)
    x = rgb_to_opponent(torch.from_numpy(image.transpose(2, 0, 1) / 255.0).float()[None])
    with torch.no_grad():
        y = opponent_to_rgb(torch.cat([net(x[:, c : c + 1]) for c in range(3)], 1))
    expected = np.rint(y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255)
    assert np.abs(out - expected).max() <= 1  # float rounding at .5 may differ


def test_a_gray_model_trained_at_one_noise_level_restores_r_g_and_b():
    """A fixed-sigma model meets sigma in R, G and B, but sigma/sqrt(3) in the opponent
    luminance (colour.gray_model_basis): it restores each RGB channel as it is."""
    net = TinyConverseNet(1).eval()
    net.fixed_sigma = 25.0
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    out, notes = Restorer("denoise", net)(image, chroma_subsampling=(2, 2))
    assert any("each R, G, B channel" in n and "sigma 25" in n for n in notes)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], Restorer("denoise", net)(image[..., c])[0])


def _noisy_sample(sigma: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """The packaged photo and the protocol's seeded noise on it (float32, unclipped)."""
    hr, lq = degrade(sample_image(), Protocol("denoise", sigma=sigma, channels=3))
    return hr, lq


def test_a_gray_model_restores_colour_better_in_the_opponent_basis_than_per_rgb():
    """Issue #24: a gray model on a colour image, per RGB channel vs opponent channels. On
    this photo the blind gray model gains 1.54 dB at sigma 25 (Set5: 0.47 to 1.87 dB, mean
    1.17); the test asks for half of it."""
    hr, noisy = _noisy_sample()
    gray = create_model("converse_dncnn_compact", pretrained=True).eval()
    ours, _ = Restorer("denoise", "converse_dncnn_compact", download=False)(noisy)
    per_rgb, _ = Restorer("denoise", PerChannel(gray, basis="rgb"), in_channels=3)(noisy)
    assert psnr(_uint8(ours), hr) > psnr(_uint8(per_rgb), hr) + 0.75


def _uint8(image: np.ndarray) -> np.ndarray:
    return np.rint(image * 255).astype(np.uint8)


def test_rgb_model_on_gray_keeps_gray():
    net = TinyConverseNet(3)
    image = np.random.default_rng(0).random((20, 24)).astype(np.float32)
    out, notes = Restorer("denoise", net)(image)
    assert out.shape == image.shape and out.dtype == np.float32
    assert any("RGB model" in n for n in notes)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_identity_restorer_preserves_dtype_and_values(dtype):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        image = rng.integers(0, np.iinfo(dtype).max + 1, (10, 12, 3)).astype(dtype)
    else:
        image = rng.random((10, 12, 3)).astype(dtype)
    out, _ = Restorer("denoise", nn.Conv2d(3, 3, 1).requires_grad_(False).apply(_identity))(image)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, image, atol=1e-6 if dtype == np.float64 else 1)


def _identity(module):
    if isinstance(module, nn.Conv2d):
        module.weight.copy_(torch.eye(3)[..., None, None])
        module.bias.zero_()


def test_alpha_is_passed_through_untouched():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65536, (16, 18, 4)).astype(np.uint16)
    out, _ = Restorer("denoise", TinyConverseNet(3))(image)
    assert out.shape == image.shape and out.dtype == np.uint16
    np.testing.assert_array_equal(out[..., 3], image[..., 3])
    gray_alpha = rng.integers(0, 256, (16, 18, 2)).astype(np.uint8)
    out, _ = Restorer("denoise", TinyConverseNet(1))(gray_alpha)
    np.testing.assert_array_equal(out[..., 1], gray_alpha[..., 1])


def test_super_resolution_with_alpha():
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 4), dtype=np.uint8)
    out, notes = Restorer("sr", TinyConverseNet(3, scale=2), scale=2)(image)
    assert out.shape == (20, 24, 4)
    assert any("alpha" in n for n in notes)


def test_super_resolution_with_back_projection():
    """The float result's bicubic downscale is the input; refused for other tasks."""
    image = np.random.default_rng(0).uniform(0.3, 0.7, (10, 12, 3)).astype(np.float32)
    net = nn.Upsample(scale_factor=2)  # nearest: a poor SR model
    plain, _ = Restorer("sr", net, scale=2)(image)
    out, _ = Restorer("sr", net, scale=2, back_projection=True)(image)
    assert out.shape == plain.shape == (20, 24, 3)
    assert np.abs(imresize(out.astype(np.float64), 1 / 2) - image).max() < 1e-5
    assert np.abs(imresize(plain.astype(np.float64), 1 / 2) - image).max() > 1e-2
    with pytest.raises(ValueError, match="back_projection applies to super-resolution"):
        Restorer("denoise", TinyConverseNet(3), back_projection=True)


def test_single_channel_axis_is_kept():
    image = np.random.default_rng(0).random((8, 9, 1)).astype(np.float32)
    out, _ = Restorer("denoise", TinyConverseNet(1))(image)
    assert out.shape == (8, 9, 1)


def test_restorer_tiling_matches_explicit_tiled_apply():
    net = TinyConverseNet(1).eval()
    image = np.random.default_rng(0).random((70, 60)).astype(np.float32)
    out, _ = Restorer("denoise", net, tile=32, tile_overlap=8)(image)
    with torch.no_grad():
        expected = tiled_apply(net, torch.from_numpy(image)[None, None], 32, 8)
    np.testing.assert_allclose(out, expected.clamp(0, 1)[0, 0].numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"task": "colorize"}, ValueError, "task must be one of"),
        ({"task": "denoise", "kernel": np.ones((3, 3))}, ValueError, "only applies"),
        ({"task": "deblur", "kernel": np.zeros((3, 3))}, ValueError, "sums to"),
        ({"task": "deblur", "kernel": np.ones((2, 3, 3))}, ValueError, "2-D"),
        ({"task": "deblur", "kernel": np.eye(3) - 0.1}, ValueError, "6 negative tap"),
        ({"task": "sr"}, ValueError, "scale="),
        ({"task": "denoise", "tile": -4}, ValueError, "tile"),
        ({"task": "denoise", "model": 3}, TypeError, "model must be"),
    ],
)
def test_restorer_errors(kwargs, error, message):
    kwargs = dict(kwargs)
    task = kwargs.pop("task")
    model = kwargs.pop("model", TinyConverseNet(1))
    with pytest.raises(error, match=message):
        Restorer(task, model, **kwargs)


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((0, 5), np.uint8), ValueError),
        (np.zeros((4, 4, 5), np.uint8), ValueError),
        (np.zeros((4, 4), np.int32), TypeError),
        ("not an image", TypeError),
    ],
)
def test_restorer_rejects_bad_images(image, error):
    with pytest.raises(error):
        Restorer("denoise", TinyConverseNet(1))(image)


def test_named_model_of_the_wrong_task_is_refused():
    with pytest.raises(ValueError, match="cannot be used for 'denoise'"):
        Restorer("denoise", "converse_srresnet", download=False)
    with pytest.raises(ValueError, match="give it the blur kernel"):
        Restorer("deblur", "converse_usrnet", download=False)
    with pytest.raises(ValueError, match="takes no kernel"):
        Restorer("deblur", "conversenet", kernel=np.ones((3, 3)), download=False)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Restorer("denoise", weights=tmp_path / "missing.pth", download=False)


def test_a_trained_weights_file_is_a_model(tmp_path):
    """A ``.safetensors`` file of ``conversenet train`` names its model and options: its
    path loads that model with those weights, as the name and ``weights=`` do."""
    options = {"num_blocks": 2, "num_features": 8}
    torch.manual_seed(0)
    model = create_model("converse_dncnn_compact", **options)
    meta = {"model": "converse_dncnn_compact", "options": options}
    path = export_weights(model.state_dict(), tmp_path / "mine.safetensors", meta)
    loaded, spec, notes = load_model(path)
    assert spec.name == "converse_dncnn_compact" and notes == []
    saved = model.state_dict()
    assert all(torch.equal(value, saved[key]) for key, value in loaded.state_dict().items())
    noisy = np.random.default_rng(0).integers(0, 256, (20, 18), dtype=np.uint8)
    by_name = Restorer("denoise", "converse_dncnn_compact", weights=path)(noisy)[0]
    np.testing.assert_array_equal(restore(noisy, "denoise", str(path)), by_name)
    with pytest.raises(ValueError, match="weights= does not apply"):
        load_model(path, weights=path)
    torch.save(model.state_dict(), tmp_path / "plain.pth")
    with pytest.raises(ValueError, match=r"does not name its model.*weights='.*plain\.pth'"):
        Restorer("denoise", tmp_path / "plain.pth")
    with pytest.raises(FileNotFoundError, match=r"no such weights file: .*gone\.safetensors"):
        load_model(tmp_path / "gone.safetensors")
    with pytest.raises(ValueError, match=r"an exported \.onnx file or a weights file"):
        load_model(tmp_path / "mine.txt")


# ---------------------------------------------------------------------------------------
# restore() on arrays and PIL images
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "I;16"])
def test_restore_pil_returns_the_same_mode(mode):
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (12, 14)).astype(np.uint16))
    else:
        size = {"L": (12, 14), "RGB": (12, 14, 3), "RGBA": (12, 14, 4)}[mode]
        img = Image.fromarray(rng.integers(0, 256, size).astype(np.uint8))
    assert img.mode == mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = restore(img, "denoise", TinyConverseNet(1 if mode in ("L", "I;16") else 3))
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == img.size
    if mode == "RGBA":
        np.testing.assert_array_equal(np.asarray(out)[..., 3], np.asarray(img)[..., 3])


def test_restore_warns_about_conversions():
    image = np.random.default_rng(0).integers(0, 256, (12, 14, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="each colour channel.*opponent"):
        out = restore(image, "denoise", TinyConverseNet(1))
    assert out.shape == image.shape


def test_restore_palette_image_comes_back_rgb():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    with pytest.warns(UserWarning, match="palette"):
        out = restore(img.quantize(8), "denoise", TinyConverseNet(3))
    assert out.mode == "RGB"


def test_public_exports():
    assert conversenet.restore is restore
    assert callable(conversenet.load_image) and callable(conversenet.save_image)
    assert conversenet.Restorer is Restorer
    assert set(COMMAND_TASKS) == {"denoise", "sr", "deblur"}
    assert all(get_task(t).default_model for t in COMMAND_TASKS)


# ---------------------------------------------------------------------------------------
# the official models against the upstream golden outputs
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden():
    return np.load(need_shared("reference", "models_official_outputs.npz"))


def test_restore_denoise_matches_upstream(golden):
    official_weights("converse_dncnn.pth")
    x, y = golden["dncnn_x"][0, 0], golden["dncnn_y"][0, 0]
    out = restore(x, "denoise", download=False)  # float32 in -> float32 out, clamped
    np.testing.assert_allclose(out, np.clip(y, 0, 1), atol=2e-4)


def test_restore_sr_matches_upstream(golden):
    official_weights("converse_srresnet.pth")
    x, y = golden["srresnet_x"][0].transpose(1, 2, 0), golden["srresnet_y"][0].transpose(1, 2, 0)
    out = restore(x, "sr", scale=4, download=False)
    assert out.shape == (48, 48, 3)
    np.testing.assert_allclose(out, np.clip(y, 0, 1), atol=2e-4)


def test_restore_deblur_blind_matches_upstream(golden):
    official_weights("conversenet.pth")
    x = golden["conversenet_x"][0].transpose(1, 2, 0)
    out = restore(x, "deblur", download=False)
    y = golden["conversenet_y"][0].transpose(1, 2, 0)
    np.testing.assert_allclose(out, np.clip(y, 0, 1), atol=2e-4)


def test_restore_deblur_nonblind_matches_upstream(golden):
    official_weights("converse_usrnet.pth")
    k = golden["usrnet_k"][0, 0]
    out = restore(golden["usrnet_x"][0].transpose(1, 2, 0), "deblur", kernel=k, download=False)
    y = golden["usrnet_y"][0].transpose(1, 2, 0)
    np.testing.assert_allclose(out, np.clip(y, 0, 1), atol=2e-4)


def test_sigma_other_than_25_warns_with_the_official_denoiser():
    official_weights("converse_dncnn.pth")
    restorer = Restorer("denoise", sigma=50, download=False)
    assert any("sigma 25" in n for n in restorer.notes)
    assert Restorer("denoise", sigma=25, download=False).notes == []


# ---------------------------------------------------------------------------------------
# one load, one hash
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("official", [True, False], ids=["official", "offline-fallback"])
def test_a_default_model_is_hashed_once_per_restore(monkeypatch, tmp_path, official):
    if official:
        monkeypatch.setenv("CONVERSENET_WEIGHTS", str(official_weights()))
    else:
        monkeypatch.setenv("CONVERSENET_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(
        conversenet.inference, "_MODEL_CACHE", type(conversenet.inference._MODEL_CACHE)()
    )
    hashed = []
    real = conversenet.weights.sha256sum
    monkeypatch.setattr(conversenet.weights, "sha256sum", lambda p: hashed.append(p) or real(p))
    image = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restore(image, "denoise", download=False)
    offline = get_model_info(get_task("denoise").offline_model).pretrained.filename
    expected = "converse_dncnn.pth" if official else offline
    assert [Path(p).name for p in hashed] == [expected]
    restore(image, "denoise", download=False)  # the loaded model is reused: no new hash
    assert len(hashed) == 1


# ---------------------------------------------------------------------------------------
# what restore() takes and refuses
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [[[0.5, 0.5]], "noisy.png", 3.0, None])
def test_restore_refuses_other_types_before_loading_a_model(bad, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(conversenet.inference, "Restorer", no_model)
    with pytest.raises(TypeError, match=r"NumPy array, a PIL image or a torch\.Tensor"):
        restore(bad, "denoise")


@pytest.mark.parametrize("shape", [(1, 20, 24), (2, 1, 20, 24), (3, 20, 24)])
def test_restore_takes_a_tensor_and_returns_one_like_it(shape):
    x = torch.rand(shape, dtype=torch.float64)
    net = TinyConverseNet(shape[-3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = restore(x, "denoise", net)
    assert isinstance(out, torch.Tensor)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    first = x[0] if x.dim() == 4 else x
    expected, _ = Restorer("denoise", net)(first.permute(1, 2, 0).numpy().astype(np.float32))
    got = (out[0] if x.dim() == 4 else out).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected.reshape(got.shape), atol=1e-6)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.full((8, 8), 200.0), r"\[0, 1\] scale.*found values in \[200, 200\].*divide"),
        (np.full((8, 8), -0.9), r"found values in \[-0.9, -0.9\]"),
        (np.where(np.eye(8) > 0, np.nan, 0.5), "8 NaN or infinite"),
        (np.where(np.eye(8) > 0, np.inf, 0.5), "NaN or infinite"),
    ],
)
def test_float_images_off_the_unit_scale_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        Restorer("denoise", TinyConverseNet(1))(values.astype(np.float32))


def test_noisy_float_images_slightly_outside_the_unit_range_are_fine():
    noisy = np.clip(np.random.default_rng(0).normal(0.5, 0.3, (16, 16)), -0.4, 1.4)
    out, _ = Restorer("denoise", TinyConverseNet(1))(noisy.astype(np.float32))
    assert out.shape == noisy.shape


@pytest.mark.parametrize("sigma", [0, -5, 256, float("nan"), float("inf")])
def test_sigma_must_be_a_noise_level(sigma):
    with pytest.raises(ValueError, match="0 < sigma <= 255"):
        Restorer("denoise", "converse_dncnn_compact", sigma=sigma)


def test_images_smaller_than_the_model_accepts_are_padded_and_cropped_back():
    restorer = Restorer("denoise", "converse_dncnn_compact", download=False)
    assert restorer.runner.min_size > 1
    out, notes = restorer(np.full((2, 3), 128, np.uint8))
    assert out.shape == (2, 3) and any("smaller than" in n for n in notes)


def test_a_small_tile_is_raised_with_a_note():
    restorer = Restorer("denoise", TinyConverseNet(1), tile=2)
    assert restorer.runner.tile == 16
    assert any("below the smallest useful tile" in n for n in restorer.notes)
    with pytest.raises(ValueError, match="below half the tile"):
        Restorer("denoise", TinyConverseNet(1), tile=32, tile_overlap=16)
