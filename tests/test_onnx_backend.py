"""The onnxruntime backend: ``conversenet export`` files through the usual tiling and I/O.

One fixed-size export of the packaged compact denoiser (made with the ``conversenet
export`` command itself) serves most tests; the slow tests export a dynamic model, a
super-resolution model and a non-blind deblurring model.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
import torch

import conversenet
from conversenet.cli import main
from conversenet.export import export_model
from conversenet.inference import Restorer, load_model, restore
from conversenet.io import load_image, save_image
from conversenet.metrics import psnr
from conversenet.models import get_model_info
from conversenet.onnx_backend import OnnxModule, make_onnx_restorer, read_onnx_metadata
from conversenet.samples import sample_image

pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs the `onnx` extra")
pytest.importorskip("onnxscript", reason="exporting needs the `onnx` extra")
pytest.importorskip("onnx", reason="exporting needs the `onnx` extra")
pytestmark = pytest.mark.usefixtures("quiet_exporter")

COMPACT = "converse_dncnn_compact"
SIZE = 32


@pytest.fixture(scope="module")
def compact_onnx(tmp_path_factory):
    """``conversenet export converse_dncnn_compact --size 32``: (path, stdout)."""
    path = tmp_path_factory.mktemp("onnx") / "compact.onnx"
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore")  # the exporter's own deprecation warnings
        code = main(["export", COMPACT, "-o", str(path), "--size", str(SIZE)])
    assert code == 0
    return path, out.getvalue()


def clean_and_noisy(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A gray crop of the packaged sample photo and a noisy copy (sigma 25), uint8."""
    clean = sample_image().mean(axis=2)[:height, :width].round().astype(np.uint8)
    noise = np.random.default_rng(seed).normal(0, 25, clean.shape)
    return clean, np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def test_cli_export_reports_the_check(compact_onnx):
    path, stdout = compact_onnx
    assert path.is_file()
    assert f"fixed {SIZE}x{SIZE}" in stdout
    assert "onnxruntime vs PyTorch: max abs difference" in stdout
    error = float(stdout.split("max abs difference ")[1].split()[0])
    assert error < 1e-4
    meta = read_onnx_metadata(path)
    assert (meta.model, meta.task, meta.input_size) == (COMPACT, "denoise", (SIZE, SIZE))


def test_the_file_and_the_registry_describe_the_model_alike(compact_onnx):
    """The descriptor read from the file's metadata agrees with the registry's, except
    where an export differs: its name, its fixed size and tile, the minimum size
    (:class:`OnnxModule` pads smaller inputs itself)."""
    spec = read_onnx_metadata(compact_onnx[0]).spec()
    registered = get_model_info(COMPACT).spec()
    same = ("task", "scale", "in_channels", "out_channels", "kernel_size", "fixed_sigma")
    assert {k: getattr(spec, k) for k in same} == {k: getattr(registered, k) for k in same}
    assert spec.size_multiple == registered.size_multiple == 2
    assert (spec.name, spec.input_size, spec.preferred_tile) == (
        f"{COMPACT} (ONNX)",
        (SIZE, SIZE),
        SIZE,
    )
    restorer = make_onnx_restorer(compact_onnx[0], "denoise")
    assert restorer.spec == spec and restorer.model_name == f"{COMPACT} (ONNX)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "dncnn", "-o", "{dir}/a.onnx"], "no published weights"),
        (["export", COMPACT, "-o", "{dir}/a.onnx", "--dynamic", "--height", "8"], "--dynamic"),
        (["export", COMPACT, "-o", "{dir}/a.txt"], "must be a .onnx file"),
        (["export", "nope", "-o", "{dir}/a.onnx"], "unknown model"),
        (["export", COMPACT, "-o", "{dir}/a.onnx", "--size", "31"], "multiples of 2"),
    ],
)
def test_cli_export_errors(tmp_path, capsys, args, message):
    code = main([a.format(dir=tmp_path) for a in args])
    assert code == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a.onnx").exists()


def test_cli_export_keeps_an_existing_file(tmp_path, capsys):
    target = tmp_path / "a.onnx"
    target.write_bytes(b"keep me")
    assert main(["export", COMPACT, "-o", str(target)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert target.read_bytes() == b"keep me"


def test_tiles_match_pytorch(compact_onnx):
    """Same tiles, same blending: the ONNX file and PyTorch give the same image."""
    _, noisy = clean_and_noisy(70, 51)
    ours, notes = make_onnx_restorer(compact_onnx[0], "denoise", tile_overlap=8)(noisy)
    torch_restorer = Restorer("denoise", COMPACT, tile=SIZE, tile_overlap=8, download=False)
    reference, _ = torch_restorer(noisy)
    assert ours.shape == noisy.shape and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1
    assert notes == []


def test_self_ensemble_matches_pytorch(compact_onnx):
    _, noisy = clean_and_noisy(40, 36, seed=3)
    ours, _ = make_onnx_restorer(compact_onnx[0], "denoise", tile_overlap=8, x8=True)(noisy)
    torch_restorer = Restorer(
        "denoise", COMPACT, tile=SIZE, tile_overlap=8, x8=True, download=False
    )
    reference, _ = torch_restorer(noisy)
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1


def test_small_image_is_padded_to_the_fixed_size(compact_onnx):
    clean, noisy = clean_and_noisy(20, 27, seed=1)
    restorer = make_onnx_restorer(compact_onnx[0], "denoise")
    assert restorer.passes(noisy) == 1
    out, _ = restorer(noisy)
    assert out.shape == (20, 27)
    assert psnr(out, clean) > psnr(noisy, clean) + 3  # it denoises


def test_colour_image_and_progress(compact_onnx):
    rgb = sample_image()[:40, :36]
    calls = []
    restorer = make_onnx_restorer(compact_onnx[0], "denoise", tile_overlap=4)
    out, notes = restorer(rgb, progress=calls.append)
    assert out.shape == rgb.shape and out.dtype == rgb.dtype
    assert len(calls) == restorer.passes(rgb) == 3 * 4  # 3 channels x 2x2 tiles
    assert any("gray model" in note and "ONNX" in note for note in notes)


@pytest.mark.parametrize("chroma", [None, (2, 2)])
def test_a_gray_file_restores_colour_as_the_torch_restorer_does(compact_onnx, chroma):
    """Opponent channels, or a JPEG's Y, Cb, Cr planes with Cb and Cr at half resolution
    (64x64 -> 32x32 planes: whole tiles of the 32x32 export, so both backends tile alike)."""
    rgb = sample_image()[:64, :64]
    tiles = {"tile": SIZE, "tile_overlap": 8}
    ort = make_onnx_restorer(compact_onnx[0], "denoise", **tiles)
    ours, notes = ort(rgb, chroma_subsampling=chroma)
    reference, _ = Restorer("denoise", COMPACT, download=False, **tiles)(
        rgb, chroma_subsampling=chroma
    )
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1
    plane_note = "Y, Cb and Cr planes" if chroma else "opponent colour basis"
    assert any(plane_note in note for note in notes)


def test_module_rejects_inputs_larger_than_the_fixed_size(compact_onnx):
    module = OnnxModule(compact_onnx[0])
    with pytest.raises(ValueError, match="at most 32x32"):
        module(torch.rand(1, 1, 33, 8))
    with pytest.raises(ValueError, match=r"shape \(N, 1, H, W\)"):
        module(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        ("sr", {}, "cannot be used for 'sr'"),
        ("denoise", {"weights": "w.pth"}, "takes no weights file"),
        ("denoise", {"tile": 64}, "at most 32"),
        ("denoise", {"tile": None}, "runs in tiles"),
        ("denoise", {"model": "converse_dncnn"}, f"holds {COMPACT}"),
        ("denoise", {"device": "cuda"}, "runs on the CPU"),
        ("denoise", {"colour_route": "gray"}, "runs the one model of its file"),
    ],
)
def test_restorer_errors(compact_onnx, task, options, message):
    with pytest.raises(ValueError, match=message):
        make_onnx_restorer(compact_onnx[0], task, **options)


def test_cli_denoise_with_onnxruntime_matches_torch(compact_onnx, tmp_path, capsys):
    _, noisy = clean_and_noisy(45, 60, seed=2)
    save_image(tmp_path / "noisy.png", noisy)
    common = ["denoise", str(tmp_path / "noisy.png"), "--tile", "32", "--tile-overlap", "8"]
    onnx_args = ["--backend", "onnxruntime", "--onnx", str(compact_onnx[0]), "--quiet"]
    assert main([*common, "-o", str(tmp_path / "ort.png"), *onnx_args]) == 0
    torch_args = ["--model", COMPACT, "--quiet", "--no-download"]
    assert main([*common, "-o", str(tmp_path / "torch.png"), *torch_args]) == 0
    ours, reference = load_image(tmp_path / "ort.png"), load_image(tmp_path / "torch.png")
    assert ours.shape == noisy.shape
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1


# ---------------------------------------------------------------------------------------
# a file's path as the model: load_model, Restorer, restore() and the command
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("as_text", [False, True], ids=["Path", "str"])
def test_load_model_takes_the_file_and_restores_as_pytorch(compact_onnx, as_text):
    path = str(compact_onnx[0]) if as_text else compact_onnx[0]
    module, spec, notes = load_model(path, "denoise")
    assert isinstance(module, OnnxModule) and notes == []
    assert spec == read_onnx_metadata(path).spec()
    _, noisy = clean_and_noisy(70, 51, seed=4)
    ours, _ = Restorer("denoise", path, tile_overlap=8)(noisy)
    reference, _ = Restorer("denoise", COMPACT, tile=SIZE, tile_overlap=8, download=False)(noisy)
    assert ours.shape == noisy.shape and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - reference.astype(int)).max() <= 1  # as the tiles test
    # one path: the same restorer as make_onnx_restorer's, and restore() takes the file too
    np.testing.assert_array_equal(
        ours, make_onnx_restorer(path, "denoise", tile_overlap=8)(noisy)[0]
    )
    np.testing.assert_array_equal(ours, restore(noisy, "denoise", path, tile_overlap=8))


def test_a_missing_or_damaged_file_is_refused_clearly(compact_onnx, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such ONNX file: .*missing\.onnx"):
        load_model(tmp_path / "missing.onnx", "denoise")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"junk\.onnx: not an ONNX model onnxruntime can load"):
        Restorer("denoise", tmp_path / "junk.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.onnx: empty file \(0 bytes\)"):
        load_model(str(tmp_path / "empty.onnx"))
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(compact_onnx[0].read_bytes()[:2000])
    with pytest.raises(ValueError, match=r"cut\.onnx: not an ONNX model onnxruntime can load"):
        load_model(cut)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"weights": "w.pth"}, "takes no weights file"),
        ({"model_options": {"num_blocks": 2}}, "takes no model options"),
        ({"device": "cuda"}, "runs on the CPU"),
    ],
)
def test_load_model_refuses_what_the_file_fixes(compact_onnx, options, message):
    with pytest.raises(ValueError, match=message):
        load_model(compact_onnx[0], "denoise", **options)


def test_cli_model_option_takes_the_file(compact_onnx, tmp_path):
    _, noisy = clean_and_noisy(45, 60, seed=2)
    save_image(tmp_path / "noisy.png", noisy)
    common = ["denoise", str(tmp_path / "noisy.png"), "--tile-overlap", "8", "--quiet"]
    onnx = str(compact_onnx[0])
    assert main([*common, "-o", str(tmp_path / "model.png"), "--model", onnx]) == 0
    assert main([*common, "-o", str(tmp_path / "onnx.png"), "--onnx", onnx]) == 0
    np.testing.assert_array_equal(
        load_image(tmp_path / "model.png"), load_image(tmp_path / "onnx.png")
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backend", "onnxruntime"], "needs --onnx FILE"),
        (
            ["--backend", "torch", "--model", "{onnx}"],
            "compact.onnx runs with --backend onnxruntime",
        ),
        (["--onnx", "{onnx}", "--model", "{onnx}"], "give the ONNX file once"),
        (["--model", "{dir}/missing.onnx"], "no such ONNX file"),
        (["--backend", "torch", "--onnx", "{onnx}"], "--backend onnxruntime"),
        (["--onnx", "{dir}/missing.onnx"], "no such ONNX file"),
    ],
)
def test_cli_backend_errors(compact_onnx, tmp_path, capsys, extra, message):
    _, noisy = clean_and_noisy(16, 16)
    save_image(tmp_path / "n.png", noisy)
    args = [a.format(onnx=compact_onnx[0], dir=tmp_path) for a in extra]
    assert main(["denoise", str(tmp_path / "n.png"), "-o", str(tmp_path / "o.png"), *args]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


# ---------------------------------------------------------------------------------------
# slow: a dynamic export, super-resolution and non-blind deblurring
# ---------------------------------------------------------------------------------------
def _randomised_weights(name: str, overrides: dict, tmp_path):
    model = conversenet.create_model(name, **overrides)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=gen))
    path = tmp_path / f"{name}_random.pth"  # not the official name (that is SHA-checked)
    torch.save(model.state_dict(), path)
    return path, model.eval()


@pytest.mark.slow
def test_dynamic_export_pads_to_the_size_multiple(tmp_path):
    overrides = {"num_blocks": 2, "num_features": 8}
    weights, model = _randomised_weights(COMPACT, overrides, tmp_path)
    path = tmp_path / "dyn.onnx"
    export_model(COMPACT, path, weights=weights, dynamic=True, overrides=overrides, check=False)
    module = OnnxModule(path)
    assert module.info.dynamic and module.info.size_multiple == 2
    x = torch.rand(1, 1, 21, 27)  # odd sizes: padded to even ones, as the model itself does
    with torch.no_grad():
        expected = model(x)
    got = module(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 1e-4
    # below min_tile the input is padded up to it (a result, not PyTorch's exactly)
    assert module(torch.rand(1, 1, 9, 40)).shape == (1, 1, 9, 40)


@pytest.mark.slow
def test_super_resolution_through_the_backend(tmp_path):
    overrides = {"num_blocks": 2, "num_features": 8}
    weights, model = _randomised_weights("converse_srresnet", overrides, tmp_path)
    path = tmp_path / "sr.onnx"
    export_model(
        "converse_srresnet", path, weights=weights, height=16, width=16, overrides=overrides
    )
    rgb = sample_image()[:30, :20]
    out, _ = make_onnx_restorer(path, "sr", tile_overlap=4)(rgb)
    assert out.shape == (120, 80, 3)
    x = torch.from_numpy(rgb[:16, :16].astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = model(x)
    assert (OnnxModule(path)(x) - expected).abs().max() < 1e-4


@pytest.mark.slow
def test_nonblind_deblurring_with_a_smaller_kernel(tmp_path):
    overrides = {"num_blocks": 1, "num_features": 8, "num_iterations": 2}
    weights, model = _randomised_weights("converse_usrnet", overrides, tmp_path)
    path = tmp_path / "usr.onnx"
    export_model("converse_usrnet", path, weights=weights, height=24, width=24, overrides=overrides)
    module = OnnxModule(path)
    assert module.spec.kernel_size == 7
    kernel = torch.rand(1, 1, 5, 5)
    kernel /= kernel.sum()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        expected = model(x, kernel, 1)
    assert (module(x, kernel, 1) - expected).abs().max() < 1e-4
    restorer = make_onnx_restorer(path, "deblur", kernel=kernel[0, 0].numpy())
    out, _ = restorer(sample_image()[:30, :30])
    assert out.shape == (30, 30, 3)
    with pytest.raises(ValueError, match="give it the blur kernel"):
        make_onnx_restorer(path, "deblur")
