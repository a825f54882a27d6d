"""Sphinx configuration of the conversenet documentation.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Everything that describes the code is generated at build time: the API reference from
the public modules listed in ``api_modules`` (``_ext/api_reference.py``), the command-line
reference from the argparse parsers (``_ext/cli_reference.py``), the model table from the
registry (``_ext/model_table.py``), the performance plots from the benchmark records in
``data/benchmarks/`` (``_ext/bench_plots.py``) and the example gallery from
``examples/`` (sphinx-gallery; the examples run in ``tests/test_examples.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
if (ROOT / "src" / "conversenet").is_dir():  # the checkout's code, also without an install
    sys.path.insert(0, str(ROOT / "src"))

import conversenet  # noqa: E402

project = "conversenet"
author = "conversenet developers"
copyright = "conversenet developers; Apache-2.0"
release = conversenet.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "api_reference",
    "cli_reference",
    "model_table",
    "bench_plots",
]

# --- sources -------------------------------------------------------------------------
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "data", "images", "sg_execution_times.rst"]
templates_path = ["_templates"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # the included model cards start at their own level

# --- the API reference (public import paths only) --------------------------------------
api_modules = [
    "conversenet",
    "conversenet.functional",
    "conversenet.operator",
    "conversenet.models",
    "conversenet.data",
    "conversenet.training",
    "conversenet.tasks",
    "conversenet.weights",
    "conversenet.metrics",
    "conversenet.evaluation",
    "conversenet.export",
    "conversenet.onnx_backend",
]
autosummary_generate = True
autosummary_imported_members = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_inherit_docstrings = False  # PyTorch's docstrings are PyTorch's to document
autodoc_mock_imports = ["onnxruntime", "onnx", "onnxscript", "gradio"]  # optional extras
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = ["Shape"]  # kornia-style shapes, rendered as written

# Broken cross-references are errors (with -W), except references to other libraries
# (no inventories are fetched: the build runs offline) and to the package's private
# modules, which the reference does not document (see api_reference.private_targets).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|nn|F|PIL|Image|scipy|onnxruntime|gradio|yaml)(\..*)?"),
    (r"py:.*", r"(os|io|pathlib|typing|typing_extensions|types|collections)\..*"),
    (r"py:.*", r"(dataclasses|enum|argparse)\..*"),
    (r"py:.*", r"(logging|contextlib)\..*"),
    (r"py:.*", r"(Tensor|Module|Path|PathLike|Any|Callable|Iterable|Iterator|Mapping|Sequence)"),
    (r"py:.*", r"(ndarray|dtype|device|DType|ArrayLike|MappingProxyType|ModuleType|Enum)"),
    (r"py:.*", r"(optional|callable|array|array-like|tensor|module|default)"),
    (r"py:class", r"(int|float|str|bool|bytes|dict|list|tuple|set|type|object|None)"),
]

# --- HTML --------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"conversenet {release}"
html_static_path: list[str] = []
html_show_sourcelink = False

# --- the example gallery -------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # The examples run in tests/test_examples.py (with checks of what they achieve);
    # set CONVERSENET_DOCS_RUN_EXAMPLES=1 to also run them during the build.
    "plot_gallery": os.environ.get("CONVERSENET_DOCS_RUN_EXAMPLES", "0") == "1",
    "filename_pattern": r"/[a-z_]+\.py$",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_signature": False,
}

# --- the performance plots (docs/_ext/bench_plots.py, data in docs/data/benchmarks/) --------
bench_plots = {
    "time-dncnn-vs-upstream.png": {
        "case": "Converse-DnCNN forward, 2 threads",
        "metric": "seconds",
        "title": "Converse-DnCNN forward (official weights, 2 threads): time",
    },
    "memory-dncnn.png": {
        "case": "Converse-DnCNN forward, peak resident memory",
        "metric": "peak_mib",
        "title": "Converse-DnCNN forward: peak resident memory of the process",
    },
    "time-onnx.png": {
        "case": "Converse-DnCNN, whole image, 1 thread",
        "metric": "seconds",
        "title": "Converse-DnCNN (official weights, 1 thread): PyTorch and onnxruntime",
    },
}
