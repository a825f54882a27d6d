"""End-to-end tests of ``conversenet denoise | sr | deblur`` and ``conversenet models``.

Most tests run the command in-process with a randomly initialised plain DnCNN saved to a
weights file (any registered model takes ``--weights``), so they need no download. The
tests marked "official" run the real command in a subprocess with the official weights
from $CONVERSENET_WEIGHTS and skip without them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conversenet.cli import main
from conversenet.data.imresize import imresize
from conversenet.inference import Restorer
from conversenet.io import load_image, save_image
from conversenet.tasks import get_task

from conftest import (
    need_shared,
    noisy_sample_jpeg,
    official_weights,
    psnr,
    run_cli,
    write_random_images,
)


def noisy_crop(size: int = 32, seed: int = 0) -> np.ndarray:
    """A noisy gray crop of Set12 (sigma 25), uint8."""
    clean = load_image(need_shared("data", "Set12", "05.png"))[100 : 100 + size, 60 : 60 + size]
    noise = np.random.default_rng(seed).normal(0, 25, clean.shape)
    return np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def random_dncnn(tmp_path_factory) -> list[str]:
    """CLI arguments selecting a small random-weight denoiser (no download needed)."""
    from conversenet.models import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random_dncnn.pth"
    torch.save(create_model("dncnn").state_dict(), path)
    return ["--model", "dncnn", "--weights", str(path)]


# ---------------------------------------------------------------------------------------
# in-process: inputs, outputs, errors
# ---------------------------------------------------------------------------------------
def test_folder_with_a_corrupt_file_processes_the_others(tmp_path, random_dncnn, capsys):
    good = write_random_images(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.png").write_bytes(good[0].read_bytes()[:60])  # truncated
    (tmp_path / "in" / "notes.txt").write_text("not an image, not an image extension")
    code = main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *random_dncnn])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken.png" in err and "Traceback" not in err
    assert "1 of 3 input(s) failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png"]
    for p in good:
        assert load_image(tmp_path / "out" / p.name).shape == (24, 20)


def test_debug_shows_the_traceback(tmp_path, random_dncnn, capsys):
    (tmp_path / "bad.png").write_text("nope")
    code = main(["denoise", str(tmp_path / "bad.png"), "-o", str(tmp_path), *random_dncnn])
    assert code == 1 and "Traceback" not in capsys.readouterr().err
    main(["denoise", str(tmp_path / "bad.png"), "-o", str(tmp_path), "--debug", *random_dncnn])
    assert "Traceback" in capsys.readouterr().err


def test_never_overwrites_outputs_without_overwrite(tmp_path, random_dncnn, capsys):
    (src,) = write_random_images(tmp_path / "in", 1)
    out = tmp_path / "out"
    assert main(["denoise", str(src), "-o", str(out), "-q", *random_dncnn]) == 0
    first = (out / src.name).read_bytes()
    (out / src.name).write_bytes(b"precious")
    assert main(["denoise", str(src), "-o", str(out), "-q", *random_dncnn]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (out / src.name).read_bytes() == b"precious"
    assert main(["denoise", str(src), "-o", str(out), "-q", "--overwrite", *random_dncnn]) == 0
    assert (out / src.name).read_bytes() == first


def test_an_output_written_meanwhile_by_another_run(tmp_path, random_dncnn, capsys, monkeypatch):
    """Two runs into one folder: the one that loses the race keeps the other's file and is
    told the command's option (not save_image's ``overwrite=True``)."""
    (src,) = write_random_images(tmp_path / "in", 1)
    target = tmp_path / "out" / src.name
    restore = Restorer.__call__

    def racing(self, image, **options):
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(b"the other run's output")
        return restore(self, image, **options)

    monkeypatch.setattr(Restorer, "__call__", racing)
    assert main(["denoise", str(src), "-o", str(tmp_path / "out"), "-q", *random_dncnn]) == 1
    err = capsys.readouterr().err
    assert "appeared while this image was restored" in err and "--overwrite" in err, err
    assert "overwrite=True" not in err
    assert target.read_bytes() == b"the other run's output"


def test_never_overwrites_an_input(tmp_path, random_dncnn, capsys):
    (src,) = write_random_images(tmp_path, 1)
    before = src.read_bytes()
    code = main(["denoise", str(src), "-o", str(tmp_path), "--overwrite", *random_dncnn])
    assert code == 1 and "would replace an input" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_default_output_is_next_to_the_input_with_a_suffix(tmp_path, random_dncnn):
    (src,) = write_random_images(tmp_path, 1)
    assert main(["denoise", str(src), "-q", *random_dncnn]) == 0
    assert (tmp_path / "img0_denoised.png").is_file()
    assert (
        main(["denoise", str(src), "-q", "--suffix", "_x", "--format", "tif", *random_dncnn]) == 0
    )
    assert load_image(tmp_path / "img0_x.tif").shape == (24, 20)


def test_single_output_file_name(tmp_path, random_dncnn):
    (src,) = write_random_images(tmp_path / "in", 1)
    target = tmp_path / "result.png"
    assert main(["denoise", str(src), "-o", str(target), "-q", *random_dncnn]) == 0
    assert load_image(target).shape == (24, 20)


def test_recursive_folders_and_globs(tmp_path, random_dncnn, capsys):
    write_random_images(tmp_path / "in", 1)
    write_random_images(tmp_path / "in" / "sub", 1)
    assert (
        main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "flat"), "-q", *random_dncnn])
        == 0
    )
    assert [p.name for p in (tmp_path / "flat").rglob("*.png")] == ["img0.png"]
    code = main(
        ["denoise", str(tmp_path / "in"), "-r", "-o", str(tmp_path / "deep"), "-q", *random_dncnn]
    )
    assert code == 0
    assert (tmp_path / "deep" / "img0.png").is_file()
    assert (tmp_path / "deep" / "sub" / "img0.png").is_file()
    pattern = str(tmp_path / "in" / "*.png")
    assert main(["denoise", pattern, "-o", str(tmp_path / "glob"), "-q", *random_dncnn]) == 0
    assert (tmp_path / "glob" / "img0.png").is_file()
    code = main(["denoise", str(tmp_path / "in" / "*.jpg"), "-o", str(tmp_path), *random_dncnn])
    assert code == 1 and "no file matches" in capsys.readouterr().err


def test_missing_input_and_empty_folder(tmp_path, random_dncnn, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["denoise", str(tmp_path / "nope.png"), str(tmp_path / "empty"), *random_dncnn])
    err = capsys.readouterr().err
    assert code == 1
    assert "no such file or folder" in err and "no image files" in err


def test_output_folder_that_cannot_be_created(tmp_path, random_dncnn, capsys):
    (src,) = write_random_images(tmp_path / "in", 1)
    (tmp_path / "blocker").write_text("a file where the folder should go")
    code = main(["denoise", str(src), "-o", str(tmp_path / "blocker" / "out"), *random_dncnn])
    assert code == 1 and "cannot create the output folder" in capsys.readouterr().err


def test_missing_weights_file(tmp_path, capsys):
    (src,) = write_random_images(tmp_path / "in", 1)
    code = main(["denoise", str(src), "--weights", str(tmp_path / "none.pth"), "--no-download"])
    err = capsys.readouterr().err
    assert code == 1 and "none.pth" in err and "does not exist" in err
    assert "Traceback" not in err
    assert list((tmp_path / "in").iterdir()) == [src]


@pytest.mark.parametrize(
    ("content", "message"),
    [(np.ones((3, 3, 3)), "2-D"), (np.zeros((5, 5)), "sum")],
)
def test_bad_kernel_files(tmp_path, capsys, content, message):
    (src,) = write_random_images(tmp_path / "in", 1, shape=(24, 20, 3))
    np.save(tmp_path / "k.npy", content)
    code = main(["deblur", str(src), "--kernel", str(tmp_path / "k.npy"), "--no-download"])
    err = capsys.readouterr().err
    assert code == 1 and "k.npy" in err and message in err


def test_missing_kernel_file(tmp_path, capsys):
    (src,) = write_random_images(tmp_path / "in", 1, shape=(24, 20, 3))
    code = main(["deblur", str(src), "--kernel", str(tmp_path / "k.npy"), "--no-download"])
    assert code == 1 and "no such file" in capsys.readouterr().err


def test_quiet_silences_progress(tmp_path, random_dncnn, capsys):
    write_random_images(tmp_path / "in", 2)
    main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "a"), *random_dncnn])
    captured = capsys.readouterr()
    assert "img/s" in captured.err or "it/s" in captured.err or "2/2" in captured.err
    assert "->" in captured.out
    main(["denoise", str(tmp_path / "in"), "-o", str(tmp_path / "b"), "-q", *random_dncnn])
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_models_lists_the_registry(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONVERSENET_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("converse_dncnn", "converse_srresnet", "conversenet", "converse_usrnet"):
        assert name in out
    assert "missing" in out and "converse_dncnn.pth" in out
    (tmp_path / "converse_srresnet.pth").write_bytes(b"not the official file")
    assert main(["models", "--task", "sr", "--json"]) == 0
    import json

    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["converse_srresnet"]["scale"] == 4
    assert rows["converse_srresnet"]["weights"] == "corrupt"  # wrong checksum: not "missing"


# ---------------------------------------------------------------------------------------
# subprocess, official weights
# ---------------------------------------------------------------------------------------
def test_official_folder_with_corrupt_file(tmp_path):
    official_weights()
    (tmp_path / "in").mkdir()
    save_image(tmp_path / "in" / "a.png", noisy_crop())
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = run_cli("denoise", tmp_path / "in", "-o", tmp_path / "out", "--no-download")
    assert result.returncode == 1
    assert "b.png" in result.stderr and "Traceback" not in result.stderr
    restored = load_image(tmp_path / "out" / "a.png")
    clean = load_image(need_shared("data", "Set12", "05.png"))[100:132, 60:92]
    assert psnr(restored, clean) > psnr(noisy_crop(), clean) + 5  # it really denoised
    assert not (tmp_path / "out" / "b.png").exists()


def test_official_16bit_png_stays_16bit(tmp_path):
    official_weights()
    noisy8 = noisy_crop()
    save_image(tmp_path / "n16.png", noisy8.astype(np.uint16) * 257)
    save_image(tmp_path / "n8.png", noisy8)
    result = run_cli(
        "denoise", tmp_path / "n16.png", tmp_path / "n8.png", "-o", tmp_path / "out",
        "--no-download", "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out16 = load_image(tmp_path / "out" / "n16.png")
    out8 = load_image(tmp_path / "out" / "n8.png")
    assert out16.dtype == np.uint16 and out16.shape == noisy8.shape
    assert len(np.unique(out16 % 257)) > 1  # real 16-bit precision, not 8-bit scaled
    np.testing.assert_allclose(out16 / 257, out8, atol=0.6)


def test_official_rgba_keeps_alpha(tmp_path):
    official_weights()
    gray = noisy_crop()
    rgb = np.stack([gray, np.roll(gray, 5, 0), np.roll(gray, 5, 1)], axis=-1)
    alpha = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1))
    save_image(tmp_path / "a.png", np.concatenate([rgb, alpha[..., None]], axis=-1))
    result = run_cli(
        "denoise", tmp_path / "a.png", "-o", tmp_path / "out", "--no-download",
        "--model", "converse_dncnn",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "each R, G, B channel restored separately" in result.stderr  # fixed-sigma gray
    out = load_image(tmp_path / "out" / "a.png")
    assert out.shape == (32, 32, 4)
    np.testing.assert_array_equal(out[..., 3], alpha)


def test_official_tiled_run_matches_untiled(tmp_path):
    official_weights()
    save_image(tmp_path / "a.png", noisy_crop(48, seed=1))
    base = ("denoise", tmp_path / "a.png", "--no-download", "-q")
    whole = run_cli(*base, "-o", tmp_path / "whole", "--tile", "0")
    tiled = run_cli(*base, "-o", tmp_path / "tiled", "--tile", "32", "--tile-overlap", "15")
    assert whole.returncode == 0 and tiled.returncode == 0, whole.stderr + tiled.stderr
    a = load_image(tmp_path / "whole" / "a.png")
    b = load_image(tmp_path / "tiled" / "a.png")
    assert a.shape == b.shape == (48, 48)
    assert psnr(a, b) > 35  # Converse2D is global (FFT): tiles differ a little, not much


def test_sr_back_projection_makes_the_output_consistent_with_its_input(tmp_path, capsys):
    lr = np.random.default_rng(0).integers(60, 200, (20, 18, 3), dtype=np.uint8)
    save_image(tmp_path / "lr.png", lr)
    args = ["sr", str(tmp_path / "lr.png"), "--model", "converse_srresnet_compact", "-q"]
    for option, out in (([], "plain"), (["--back-projection"], "projected")):
        assert main([*args, "-o", str(tmp_path / out), *option]) == 0, capsys.readouterr().err
    misfit = {
        out: np.abs(imresize(load_image(tmp_path / out / "lr.png") / 1.0, 1 / 4) - lr).mean()
        for out in ("plain", "projected")
    }
    assert misfit["projected"] < 0.5 < misfit["plain"]  # 0-255 scale; outputs are rounded
    with pytest.raises(SystemExit) as exit_info:
        main(["denoise", str(tmp_path / "lr.png"), "--back-projection"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --back-projection" in capsys.readouterr().err


def test_official_sr_and_nonblind_deblur_with_a_png_kernel(tmp_path, capsys):
    folder = official_weights()
    for name in ("converse_srresnet.pth", "converse_usrnet.pth"):
        if not (folder / name).is_file():
            pytest.skip(f"official weights not available: {folder / name}")
    rgb = load_image(need_shared("data", "Set5", "bird.bmp"))[100:124, 100:124]
    save_image(tmp_path / "lr.png", rgb)
    code = main(["sr", str(tmp_path / "lr.png"), "-q", "--no-download"])
    assert code == 0, capsys.readouterr().err
    assert load_image(tmp_path / "lr_x4.png").shape == (96, 96, 3)
    assert main(["sr", str(tmp_path / "lr.png"), "--scale", "2", "--no-download"]) == 1
    assert "upscales by 4, not by 2" in capsys.readouterr().err

    kernel = np.zeros((5, 5), np.uint8)
    kernel[2, :] = 255  # horizontal motion blur, as an 8-bit image
    Image.fromarray(kernel).save(tmp_path / "k.png")
    kernel_option = ["--kernel", str(tmp_path / "k.png")]
    code = main(["deblur", str(tmp_path / "lr.png"), *kernel_option, "-q", "--no-download"])
    assert code == 0, capsys.readouterr().err
    assert load_image(tmp_path / "lr_deblurred.png").shape == (24, 24, 3)


# ---------------------------------------------------------------------------------------
# noisy colour JPEGs (issue #20): routed to the blind gray model, visibly and overridably
# ---------------------------------------------------------------------------------------
def test_denoise_routes_a_noisy_jpeg_to_the_gray_model_and_says_why(tmp_path, capsys):
    """A photo with sigma 25 noise saved at quality 92: the default route (the blind gray
    model on the file's Y, Cb, Cr planes) beats the colour model by 5.6 dB on this photo;
    the test asks for 1.5 dB (MARGIN_DB of tests/test_inference_jpeg.py)."""
    clean, path = noisy_sample_jpeg(tmp_path)
    common = ["denoise", str(path), "--no-download", "--quiet"]
    assert main([*common, "-o", str(tmp_path / "auto.png")]) == 0
    auto_err = capsys.readouterr().err
    assert main([*common, "-o", str(tmp_path / "colour.png"), "--colour-route", "colour"]) == 0
    colour_err = capsys.readouterr().err
    gray = get_task("denoise").offline_model
    assert f"a JPEG with 4:2:0 chroma: restored by {gray}" in auto_err
    assert "change the noise the colour model was trained on" in auto_err
    assert "conv_unet_colour, the colour model of denoise, as colour_route" in colour_err
    auto, colour = load_image(tmp_path / "auto.png"), load_image(tmp_path / "colour.png")
    assert psnr(auto, clean) > psnr(colour, clean) + 1.5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "converse_dncnn_compact", "--colour-route", "gray"], "does not apply"),
        (["--backend", "onnxruntime", "--onnx", "x.onnx", "--colour-route", "gray"], "one model"),
    ],
)
def test_colour_route_errors(tmp_path, capsys, extra, message):
    _clean, path = noisy_sample_jpeg(tmp_path)
    out = tmp_path / "out.png"
    assert main(["denoise", str(path), "-o", str(out), "--no-download", *extra]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()
