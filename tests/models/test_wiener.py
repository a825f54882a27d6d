"""The classical Wiener/Tikhonov deconvolution model: no parameters, λ by the discrepancy
principle, exact against the operator, and usable wherever a non-blind model is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_forward import gaussian_kernel

from conversenet import create_model, get_model_info
from conversenet.cli import main
from conversenet.data.protocol import add_gaussian_noise, blur
from conversenet.evaluation import Protocol, evaluate
from conversenet.functional import conv_downsample, discrepancy_lambda, reverse_conv
from conversenet.inference import Restorer
from conversenet.io import save_image
from conversenet.models import WienerDeconvolution
from conversenet.models.wiener import MISFIT_LIMIT, kernel_misfit
from conversenet.samples import demo_kernel, sample_image

from conftest import psnr, write_smooth_images

SIGMA = 2.55 / 255


def blurred_pair(seed: int = 0, size: int = 48, kernel=None):
    """A smooth RGB image, its circular blur plus noise σ 2.55/255, and the kernel."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 8, size // 8, generator=gen, dtype=torch.float64)
    clean = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")
    clean = clean.clamp(0, 1)
    kernel = gaussian_kernel(7, 1.6).double() if kernel is None else kernel
    blurred = conv_downsample(clean, kernel.expand(1, 3, -1, -1), 1)
    noisy = blurred + SIGMA * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    return clean, noisy, kernel


def test_registered_without_parameters_or_weights():
    info = get_model_info("wiener")
    assert info.task == "deblur_nonblind" and info.pretrained is None and not info.learned
    model = create_model("wiener", pretrained=True)  # nothing to load
    assert isinstance(model, WienerDeconvolution)
    assert list(model.parameters()) == [] and model.state_dict() == {}
    with pytest.raises(ValueError, match=r"wiener has no trainable parameters: it takes no"):
        create_model("wiener", weights="some.pth")


def test_restores_and_explains_the_data_to_the_noise_level():
    clean, noisy, kernel = blurred_pair()
    model = WienerDeconvolution()
    restored = model(noisy, kernel)
    residual = conv_downsample(restored, kernel.expand(1, 3, -1, -1), 1) - noisy
    rms = residual.square().mean(dim=(-2, -1)).sqrt()
    torch.testing.assert_close(rms, torch.full_like(rms, SIGMA), rtol=1e-6, atol=0)
    assert psnr(restored.numpy(), clean.numpy(), 1.0) > psnr(noisy.numpy(), clean.numpy(), 1.0) + 2


def test_equals_the_operator_with_the_chosen_lambda():
    _, noisy, kernel = blurred_pair(1)
    kernels = kernel.expand(1, 3, -1, -1)
    for x0, arg in (("blurred", None), ("zero", "zero")):
        lam = discrepancy_lambda(noisy, kernels, SIGMA, 1, arg)
        assert lam.shape == (1, 3, 1, 1) and (lam > 0).all()
        expected = reverse_conv(noisy, kernels, lam, 1, 0, "circular", arg)
        torch.testing.assert_close(WienerDeconvolution(x0=x0)(noisy, kernel), expected)
    fixed = WienerDeconvolution(lam=0.05)(noisy, kernel)
    torch.testing.assert_close(fixed, reverse_conv(noisy, kernels, 0.05))


def test_noise_free_data_gets_a_small_lambda_and_noisy_data_a_larger_one():
    _, noisy, kernel = blurred_pair(3)
    kernels = kernel.expand(1, 3, -1, -1)
    assert (
        discrepancy_lambda(noisy, kernels, 1e-4) < discrepancy_lambda(noisy, kernels, SIGMA)
    ).all()


def test_discrepancy_bounds_when_x0_already_fits():
    """With σ above the blur residual of X0 itself, X* = X0 (the largest λ)."""
    _, noisy, kernel = blurred_pair(4)
    lam = discrepancy_lambda(noisy, kernel.expand(1, 3, -1, -1), 1.0, bounds=(1e-6, 1e3))
    torch.testing.assert_close(lam, torch.full_like(lam, 1e3), rtol=1e-9, atol=0)


def test_per_sample_kernels_and_super_resolution():
    _, a, kernel = blurred_pair(5)
    b = a.flip(-1)
    other = torch.nn.functional.pad(gaussian_kernel(5, 0.8).double(), (1, 1, 1, 1))
    kernels = torch.cat([kernel, other])
    model = WienerDeconvolution()
    both = model(torch.cat([a, b]), kernels)
    torch.testing.assert_close(both[:1], model(a, kernels[:1]))
    torch.testing.assert_close(both[1:], model(b, kernels[1:]))
    assert model(a, kernel, sf=2).shape == (1, 3, 96, 96)


def test_argument_errors():
    model = WienerDeconvolution()
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"kernel batch size must be 1 or the image batch size 2"):
        model(x, gaussian_kernel().repeat(3, 1, 1, 1))
    with pytest.raises(ValueError, match=r"kernel must have shape \(N, 1, kH, kW\)"):
        model(x, gaussian_kernel().repeat(1, 3, 1, 1))
    with pytest.raises(TypeError, match=r"kernel must be a torch\.Tensor"):
        model(x, gaussian_kernel().numpy())
    with pytest.raises(ValueError, match=r"sf must be an integer >= 1"):
        model(x, gaussian_kernel(), sf=0)
    with pytest.raises(ValueError, match=r"x0 must be one of \('blurred', 'zero'\)"):
        WienerDeconvolution(x0="mean")
    with pytest.raises(ValueError, match=r"lam must be > 0 or None"):
        WienerDeconvolution(lam=0.0)
    with pytest.raises(ValueError, match=r"noise_std must be >= 0"):
        discrepancy_lambda(x, gaussian_kernel().expand(1, 3, -1, -1), -1.0)


def test_evaluate_and_the_command_line(tmp_path, capsys):
    """The protocol of `conversenet eval` and `conversenet deblur --kernel K --model wiener`."""
    images = write_smooth_images(tmp_path / "images", count=2, size=32)
    kernel = gaussian_kernel(7, 1.2)[0, 0].numpy().astype(np.float64)
    protocol = Protocol("deblur_nonblind", kernel=kernel, channels=3)
    results = evaluate(create_model("wiener"), images, protocol, progress=False)
    assert results["mean"]["psnr"] > 25
    np.save(tmp_path / "k.npy", kernel)
    code = main(
        [
            "eval",
            "--model",
            "wiener",
            "--data",
            str(images),
            "--kernel",
            str(tmp_path / "k.npy"),
            "--out",
            str(tmp_path / "eval"),
            "--quiet",
        ]
    )
    assert code == 0 and "wiener on images (deblur_nonblind)" in capsys.readouterr().out
    code = main(
        [
            "deblur",
            str(images / "img0.png"),
            "-o",
            str(tmp_path / "out.png"),
            "--kernel",
            str(tmp_path / "k.npy"),
            "--model",
            "wiener",
            "--quiet",
        ]
    )
    assert code == 0 and (tmp_path / "out.png").is_file()


# ---------------------------------------------------------------------------------------
# a kernel that cannot explain the image (issue #20)
# ---------------------------------------------------------------------------------------
def blurred_photo() -> tuple[np.ndarray, np.ndarray]:
    """The packaged photo under the deblurring protocol with the packaged 7×7 demo kernel:
    (clean uint8, blurred noisy float32 H×W×3)."""
    clean = sample_image()
    blurred = blur(clean, demo_kernel()).astype(np.float32) / 255
    return clean, add_gaussian_noise(blurred, 2.55, seed=0)


BOX25 = np.full((25, 25), 1 / 625)


def test_kernel_misfit_tells_the_blur_from_a_wrong_kernel():
    _, noisy = blurred_photo()
    y = torch.from_numpy(noisy).permute(2, 0, 1)[None]
    right = kernel_misfit(y, torch.from_numpy(demo_kernel()))
    wrong = kernel_misfit(y, torch.from_numpy(BOX25))
    assert right.shape == (1,) and float(right) < 1  # measured 0.60
    assert float(wrong) > MISFIT_LIMIT + 1  # measured 3.33


def test_a_kernel_that_cannot_explain_the_image_is_refused(tmp_path, capsys):
    """Before: ``conversenet deblur blurry.png --kernel big25.npy`` with wiener wrote pure
    noise (about 5 dB) and exited 0."""
    clean, noisy = blurred_photo()
    blurry = np.uint8(np.clip(noisy * 255, 0, 255).round())
    restorer = Restorer("deblur", "wiener", kernel=BOX25)
    with pytest.raises(ValueError, match=r"25x25 blur kernel does not explain this image"):
        restorer(blurry)
    restored, notes = Restorer("deblur", "wiener", kernel=demo_kernel())(blurry)
    assert notes == [] and psnr(restored, clean) > psnr(blurry, clean) + 0.5  # measured +1.0
    save_image(tmp_path / "blurry.png", blurry)
    np.save(tmp_path / "big25.npy", BOX25)
    args = ["deblur", str(tmp_path / "blurry.png"), "-o", str(tmp_path / "out.png")]
    code = main([*args, "--kernel", str(tmp_path / "big25.npy"), "--model", "wiener", "-q"])
    assert code == 1 and "does not explain this image" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()
