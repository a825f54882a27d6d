"""The documentation site builds with warnings as errors, and names everything public.

The build is the documented command (``sphinx-build -W --keep-going -b html docs OUT``);
its generated sources (API pages, plots, the example gallery) go where ``.gitignore``
expects them under ``docs/``. Then the built pages must name every object of the public
modules' ``__all__``, every registered model and every ``conversenet`` command and
option, and show the performance plots and the before/after pictures.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytest.importorskip(
    "sphinx", reason='the docs build needs the `docs` extra: pip install -e ".[docs]"'
)

sys.path.insert(0, str(REPO_ROOT / "docs" / "_ext"))
from bench_plots import read_records, record_side, record_value
from cli_reference import subcommands

from conversenet import list_models
from conversenet.cli import build_parser

DOCS = REPO_ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    done = subprocess.run(
        [*command, str(DOCS), str(out)], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stderr[-6000:]}"
    return out


def _text(site: Path, page: str) -> str:
    return (site / page).read_text(encoding="utf-8")


def _api_ids(site: Path) -> set[str]:
    ids = set()
    for page in (site / "api").rglob("*.html"):
        ids |= set(re.findall(r'id="(conversenet[\w.]*)"', page.read_text(encoding="utf-8")))
    return ids


def test_every_public_object_is_documented(site):
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    modules = re.findall(r'^\s+"(conversenet[\w.]*)",$', conf, flags=re.MULTILINE)
    assert {"conversenet", "conversenet.functional", "conversenet.models"} <= set(modules)
    ids = _api_ids(site)
    missing = []
    for name in modules:
        module = importlib.import_module(name)
        page = _text(site, f"api/{name}.html")
        for attr in module.__all__:
            obj = getattr(module, attr)
            if isinstance(obj, type(module)):
                continue  # a sub-module: it has its own page
            documented = any(i == f"{m}.{attr}" for m in modules for i in ids)
            if not (documented and attr in page):
                missing.append(f"{name}.{attr}")
    assert not missing, f"not in the API reference: {missing}"
    for headline in ("Converse2D", "create_model", "Restorer", "restore"):
        assert f"conversenet.{headline}" in ids
    assert "conversenet.functional.reverse_conv" in ids


def test_every_registered_model_is_in_the_table(site):
    page = _text(site, "models.html")
    start = re.search(r'<table class="[^"]*model-table', page).start()
    table = page[start : page.index("</table>", start)]
    for name in list_models():
        assert f'<span class="pre">{name}</span>' in table, name


def test_every_command_and_option_is_in_the_cli_reference(site):
    page = _text(site, "cli.html")
    for name, _, parser in subcommands(build_parser()):
        assert f'id="cli-{name}"' in page, name
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f'<span class="pre">{option}</span>' in page, f"{name} {option}"


def test_pictures_and_plots(site):
    restoring = _text(site, "restoring.html")
    for picture in ("denoise.png", "sr.png", "deblur.png"):
        assert re.search(rf'<img[^>]+src="_images/{picture}"', restoring), picture
    assert (site / "_images" / "serve.png").is_file()
    performance = _text(site, "performance.html")
    plots = re.findall(r'<img[^>]+src="(_images/[\w-]+\.png)"', performance)
    assert len(plots) >= 2
    for plot in plots:
        assert (site / plot).stat().st_size > 10_000  # a drawn figure, not an empty canvas


def test_gallery_lists_every_example(site):
    page = _text(site, "auto_examples/index.html")
    for example in (REPO_ROOT / "examples").glob("*.py"):
        assert f"{example.stem}.html" in page, example.name


def test_images_stay_small():
    for image in (DOCS / "images").iterdir():
        assert image.stat().st_size < 600_000, image.name


def test_plot_reader_accepts_the_benchmark_layouts(tmp_path):
    flat = tmp_path / "flat.json"
    flat.write_text('[{"case": "c", "impl": "ours", "size": "512x256", "wall_ms": 1500}]')
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"name": "c", "variant": "v", "height": 64, "width": 64, "peak_gib": 2}\n')
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text('{"command": "x", "results": [{"case": "c", "size": [1, 3, 128, 128]}]}')
    (record,) = read_records(flat)
    assert record_side(record) == pytest.approx((512 * 256) ** 0.5)
    assert record_value(record, "seconds") == 1.5
    (record,) = read_records(lines)
    assert (record_side(record), record_value(record, "peak_mib")) == (64, 2048)
    (record,) = read_records(wrapped)
    assert record_side(record) == 128 and record_value(record, "seconds") is None
    for data in (DOCS / "data" / "benchmarks").glob("*.json"):
        assert all(record_side(r) for r in read_records(data)), data.name
