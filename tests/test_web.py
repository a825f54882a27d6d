"""The browser app (``conversenet serve``): its logic, and the page in a real browser.

The logic (:func:`conversenet.web.restore_upload`) is tested directly. The browser tests
start the app on a free local port and drive the distribution's headless Chromium with
Playwright (its own browser download cannot work offline); they skip with the reason
when Gradio, Playwright or ``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import io
import os
import shutil
import socket

import numpy as np
import pytest
from PIL import Image

from conversenet.io import load_image, save_image
from conversenet.metrics import psnr
from conversenet.samples import sample_image
from conversenet.tasks import get_task
from conversenet.web import AUTO_MODEL, load_upload, models_for_task, restore_upload

from conftest import need_shared, noisy_sample_jpeg

# Gradio's own deprecation warnings (pandas, starlette) are not about this project
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.*")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
COMPACT = "converse_dncnn_compact"  # weights ship with the package: no download


def clean_and_noisy(height: int = 64, width: int = 48, seed: int = 0):
    clean = sample_image().mean(axis=2)[:height, :width].round().astype(np.uint8)
    noise = np.random.default_rng(seed).normal(0, 25, clean.shape)
    return clean, np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)


def corrupt_png(path):
    """A file with a PNG signature and garbage after it."""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not really a PNG file" * 4)
    return path


# ---------------------------------------------------------------------------------------
# the logic
# ---------------------------------------------------------------------------------------
def test_model_choices():
    assert models_for_task("denoise")[0] == AUTO_MODEL
    assert COMPACT in models_for_task("denoise")
    assert "converse_usrnet" in models_for_task("deblur")  # non-blind, with a kernel
    assert "dncnn" not in models_for_task("denoise")  # no published weights
    with pytest.raises(ValueError, match="task must be one of"):
        models_for_task("colourise")


def test_restore_with_reference_reports_psnr(tmp_path):
    clean, noisy = clean_and_noisy()
    save_image(tmp_path / "noisy.png", noisy)
    save_image(tmp_path / "clean.png", clean)
    calls = []
    result = restore_upload(
        tmp_path / "noisy.png",
        "denoise",
        COMPACT,
        reference_path=tmp_path / "clean.png",
        progress=lambda done, total: calls.append((done, total)),
        out_dir=tmp_path / "out",
    )
    assert result.output.shape == noisy.shape
    np.testing.assert_array_equal(load_image(result.file), result.output)  # the download
    assert result.psnr == pytest.approx(psnr(result.output, clean))
    assert result.psnr > psnr(noisy, clean) + 3
    assert f"PSNR **{result.psnr:.2f} dB**" in result.message
    assert calls and calls[-1][0] == calls[-1][1]


def test_add_noise_uses_the_clean_image_as_reference(tmp_path):
    result = restore_upload(None, "denoise", COMPACT, sigma=25, add_noise=True, out_dir=tmp_path)
    assert result.input.shape == sample_image().shape
    assert not np.array_equal(result.input, sample_image())  # noise was added
    assert result.psnr is not None and "before the noise was added" in result.message


def test_a_noisy_jpeg_upload_takes_the_route_of_the_command_line(tmp_path):
    """The file's chroma subsampling reaches the restorer: AUTO sends a noisy 4:2:0 JPEG to
    the blind gray model (its planes at their stored resolution), as `conversenet denoise`
    does; noise added in the app is independent, so that image keeps the colour model."""
    clean, path = noisy_sample_jpeg(tmp_path)
    save_image(tmp_path / "clean.png", clean)
    options = {"download": False, "out_dir": tmp_path / "out"}
    result = restore_upload(
        path, "denoise", AUTO_MODEL, reference_path=tmp_path / "clean.png", **options
    )
    assert f"with **{get_task('denoise').offline_model}**" in result.message
    assert "a JPEG with 4:2:0 chroma" in result.message and "stored resolution" in result.message
    colour = restore_upload(None, "denoise", AUTO_MODEL, add_noise=True, **options)
    assert "with **conv_unet_colour**" in colour.message
    assert "JPEG" not in colour.message


def test_a_denoiser_is_told_the_sigma_only_when_one_is_set(tmp_path):
    """No σ: the model's own (no note that a blind model "does not use sigma 25")."""
    _, noisy = clean_and_noisy()
    save_image(tmp_path / "noisy.png", noisy)
    quiet = restore_upload(tmp_path / "noisy.png", "denoise", COMPACT, out_dir=tmp_path)
    assert "sigma" not in quiet.message
    told = restore_upload(tmp_path / "noisy.png", "denoise", COMPACT, sigma=15, out_dir=tmp_path)
    assert "blind denoiser" in told.message and "does not use sigma 15" in told.message
    np.testing.assert_array_equal(told.output, quiet.output)


def test_reference_of_another_size_is_explained(tmp_path):
    clean, noisy = clean_and_noisy()
    save_image(tmp_path / "noisy.png", noisy)
    save_image(tmp_path / "other.png", clean[:10])
    with pytest.raises(ValueError, match="the reference is 48x10"):
        restore_upload(
            tmp_path / "noisy.png", "denoise", COMPACT, reference_path=tmp_path / "other.png"
        )


def test_bad_files_get_the_command_line_message_with_their_own_name(tmp_path):
    bad = corrupt_png(tmp_path / "bad.png")
    with pytest.raises(ValueError) as excinfo:
        load_upload(bad)
    message = str(excinfo.value)
    assert message.startswith("bad.png: ")
    assert str(tmp_path) not in message
    with pytest.raises(ValueError, match="larger than 10 bytes"):
        load_upload(bad, max_bytes=10)
    save_image(tmp_path / "big.png", np.zeros((30, 40), np.uint8))
    with pytest.raises(ValueError, match="40x30 pixels is more than"):
        load_upload(tmp_path / "big.png", max_pixels=1000)


def test_nonblind_deblurring_needs_a_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVERSENET_WEIGHTS", str(need_shared("weights", "official")))
    _, image = clean_and_noisy(24, 24)
    save_image(tmp_path / "blurry.png", image)
    with pytest.raises(ValueError, match="give it the blur kernel"):
        restore_upload(tmp_path / "blurry.png", "deblur", "converse_usrnet", download=False)
    kernel = np.ones((5, 5)) / 25
    np.save(tmp_path / "k.npy", kernel)
    result = restore_upload(
        tmp_path / "blurry.png",
        "deblur",
        AUTO_MODEL,
        kernel_path=tmp_path / "k.npy",
        download=False,
        out_dir=tmp_path,
    )
    assert result.output.shape == image.shape
    assert "converse_usrnet" in result.message


# ---------------------------------------------------------------------------------------
# the page, in a real browser
# ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    pytest.importorskip("gradio", reason="the browser app needs the `web` extra")
    from conversenet.web import serve

    port = free_port()
    app = serve("127.0.0.1", port, block=False, download=False)
    yield f"http://127.0.0.1:{port}"
    app.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright")
    if not (os.path.isfile(CHROMIUM) and shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url, wait_until="domcontentloaded")
    page.wait_for_selector("#run", timeout=60_000)
    yield page
    page.close()


def status_text(page) -> str:
    return page.locator("#status").inner_text()


def upload_noisy(page, folder) -> None:
    """Upload a noisy 48x64 gray crop as ``noisy.png`` and wait until the page has it."""
    _, noisy = clean_and_noisy(64, 48)
    save_image(folder / "noisy.png", noisy)
    page.locator("#image-file input[type=file]").set_input_files(str(folder / "noisy.png"))
    page.wait_for_function(
        "document.querySelector('#status').innerText.includes('Loaded noisy.png')",
        timeout=30_000,
    )


def test_page_denoises_an_uploaded_image(page, tmp_path):
    upload_noisy(page, tmp_path)
    page.locator("#run").click()
    page.wait_for_function(
        "() => { const i = document.querySelector('#result-view img');"
        " return i !== null && i.complete && i.naturalWidth > 0; }",
        timeout=180_000,
    )
    size = page.evaluate(
        "() => { const i = document.querySelector('#result-view img');"
        " return [i.naturalWidth, i.naturalHeight]; }"
    )
    assert size == [48, 64]
    assert "Denoised" in status_text(page) and "48x64 → 48x64" in status_text(page)
    link = page.locator("#download a[download='noisy_denoise.png']")
    download = page.request.get(link.get_attribute("href"))
    assert download.ok
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(download.body()))).shape, [64, 48]
    )
    assert page.locator("#compare img").count() >= 1  # the comparison slider is filled
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert load_image(shot).shape[1] >= 1000


def test_page_tells_sigma_only_when_set_and_compares_whole_images(page, tmp_path):
    upload_noisy(page, tmp_path)
    page.locator("#model input").click()
    page.locator("[role=option]", has_text=COMPACT).first.click()
    page.locator("#run").click()
    page.wait_for_function(
        "document.querySelector('#status').innerText.includes('Denoised')", timeout=180_000
    )
    assert "sigma" not in status_text(page)  # σ untouched: a blind model needs none
    # the comparison slider shows each image whole, not a band of it (once both are loaded:
    # the status line can arrive before the images do)
    page.wait_for_function(
        "() => { const s = [...document.querySelectorAll('#compare img')];"
        " return s.length >= 2 && s.every(i => i.complete && i.naturalWidth > 0); }",
        timeout=30_000,
    )
    boxes = page.evaluate(
        "() => { const c = document.querySelector('#compare').getBoundingClientRect();"
        " return [c.height, ...[...document.querySelectorAll('#compare img')]"
        ".map(i => i.getBoundingClientRect().height)]; }"
    )
    assert len(boxes) >= 2 and all(0 < h <= boxes[0] for h in boxes[1:]), boxes
    page.locator("#sigma input[type=number]").fill("15")
    page.locator("#sigma input[type=number]").press("Enter")
    page.locator("#run").click()
    page.wait_for_function(
        "document.querySelector('#status').innerText.includes('sigma 15')", timeout=180_000
    )
    assert "blind denoiser" in status_text(page)


def test_page_explains_a_corrupt_file(page, tmp_path):
    bad = corrupt_png(tmp_path / "bad.png")
    with pytest.raises(ValueError) as excinfo:
        load_upload(bad)
    expected = str(excinfo.value)
    page.locator("#image-file input[type=file]").set_input_files(str(bad))
    page.wait_for_function(
        "document.querySelector('#status').innerText.includes('Error')", timeout=30_000
    )
    assert expected in status_text(page)
    assert page.locator("#input-view img").count() == 0
