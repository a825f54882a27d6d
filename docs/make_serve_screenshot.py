"""Make ``docs/images/serve.png``: the browser app after denoising the sample photo.

Starts ``conversenet serve`` on a free local port, opens it in the distribution's
headless Chromium (Playwright), takes the sample photo, adds noise of σ 25, restores it
with the default model and saves a screenshot (in 256 colours, to keep it small). Uses
the official weights when ``CONVERSENET_WEIGHTS`` names their folder (else the packaged
compact denoiser).

    CONVERSENET_WEIGHTS=../shared/weights/official python docs/make_serve_screenshot.py
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from conversenet.web import serve

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-o", "--output", type=Path, default=Path(__file__).parent / "images" / "serve.png"
    )
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = serve("127.0.0.1", port, block=False, download=False)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}", wait_until="domcontentloaded")
            page.wait_for_selector("#run", timeout=60_000)
            page.locator("#sample").click()
            page.wait_for_function(
                "document.querySelector('#status').innerText.includes('sample')", timeout=30_000
            )
            page.locator("#add-noise input[type=checkbox]").check()
            page.locator("#run").click()
            page.wait_for_function(
                "document.querySelector('#status').innerText.includes('PSNR')", timeout=300_000
            )
            page.wait_for_timeout(1000)  # let the images settle
            args.output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.output), full_page=True)
            print(page.locator("#status").inner_text())
            browser.close()
    finally:
        app.close()
    # a palette of 256 colours keeps the screenshot under 200 KB (the page is flat colours)
    with Image.open(args.output) as shot:
        palette = shot.convert("RGB").quantize(
            256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    palette.save(args.output, optimize=True)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
