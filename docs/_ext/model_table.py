"""``.. conversenet-models::``, ``-tasks::`` and ``-paper::``: tables built from the code.

One row per name of :func:`conversenet.list_models`: its task, what it is, its parameter
count (the model is built, untrained, to count them), its weights (file and licence, or
none), where the weights come from (shipped in the package and so offline, downloaded
from the upstream repository, or none needed) and the quality measured by the project
where there is a measurement (``data/model_quality.json``, with its command).
The task table gives each task's default, offline and colour model (:mod:`conversenet.tasks`),
the paper tables the published PSNRs (:mod:`conversenet.paper`).
"""

from __future__ import annotations

import json
from pathlib import Path

from cli_reference import escape
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from conversenet import create_model, get_model_info, list_models
from conversenet.paper import PAPER_RESULTS
from conversenet.tasks import TASK_REGISTRY

QUALITY = Path(__file__).resolve().parents[1] / "data" / "model_quality.json"
HEADER = ("name", "task", "what it is", "parameters", "weights: where from (licence)", "measured")


def measured_quality() -> dict[str, dict]:
    """``{model: entry}`` from ``data/model_quality.json``."""
    entries = json.loads(QUALITY.read_text(encoding="utf-8"))["entries"]
    return {entry["model"]: entry for entry in entries}


def model_row(name: str, quality: dict[str, dict]) -> list[str]:
    info = get_model_info(name)
    params = sum(p.numel() for p in create_model(name).parameters())
    task = info.task + (f" ×{info.scale}" if info.scale > 1 else "")
    task += f", {'gray' if info.in_channels == 1 else 'RGB'}"
    weights = info.pretrained
    if weights is not None:
        source = "in the package (offline)" if weights.packaged else "downloaded (upstream)"
        files = f"``{weights.filename}``: {source} ({escape(weights.license)})"
    elif not info.learned:
        files = "none needed (offline)"
    else:
        files = "none published: train your own"
    entry = quality.get(name)
    measured = ""
    if entry:
        measured = escape(entry["result"])
        measured += f" (:doc:`how <{entry['page']}>`)"
        if entry.get("paper"):
            measured += f"; paper {escape(entry['paper'])}"
    return [f"``{name}``", task, escape(info.description), f"{params:,}", files, measured]


def list_table(header: tuple[str, ...], rows: list[list[str]], widths: str = "auto") -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", "   :class: model-table"]
    lines += [f"   :widths: {widths}", ""]
    for row in [list(header), *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return lines


class ConversenetModels(SphinxDirective):
    """Insert the table of every registered model."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(str(QUALITY))
        quality = measured_quality()
        unknown = sorted(set(quality) - set(list_models()))
        if unknown:
            raise self.error(f"{QUALITY.name} names models that are not registered: {unknown}")
        rows = [model_row(name, quality) for name in list_models()]
        container = nodes.container()
        self.state.nested_parse(
            StringList(list_table(HEADER, rows, "14 10 24 10 22 20")),
            self.content_offset,
            container,
        )
        return container.children


class ConversenetTasks(SphinxDirective):
    """Insert the table of tasks: the model each uses by default, offline and for colour."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        header = ("task", "command", "default model", "offline model", "colour images")
        rows = []
        for task in TASK_REGISTRY.values():
            command = f"``conversenet {task.command}``" + (" ``--kernel``" * task.takes_kernel)
            rows.append(
                [
                    f"``{task.name}`` ({escape(task.description)})",
                    command,
                    f"``{task.default_model}``",
                    f"``{task.offline_model}``" if task.offline_model else "–",
                    f"``{task.colour_model}``" if task.colour_model else "the same model",
                ]
            )
        container = nodes.container()
        self.state.nested_parse(
            StringList(list_table(header, rows)), self.content_offset, container
        )
        return container.children


def paper_table(setting_prefix: str) -> tuple[tuple[str, ...], list[list[str]]]:
    """The paper's PSNRs whose setting starts with ``setting_prefix``: one row per model,
    one column per (dataset, setting), in the order of :data:`conversenet.paper.PAPER_RESULTS`."""
    keys = [k for k in PAPER_RESULTS if k[2].startswith(setting_prefix)]
    columns = list(dict.fromkeys((dataset, setting) for _, dataset, setting in keys))
    models = list(dict.fromkeys(model for model, _, _ in keys))
    single = len({setting for _, setting in columns}) == 1
    header = ("model", *(d if single else f"{d} {s}" for d, s in columns))
    rows = [[f"``{m}``", *(f"{PAPER_RESULTS[(m, d, s)]:.2f}" for d, s in columns)] for m in models]
    return header, rows


class ConversenetPaper(SphinxDirective):
    """Insert one of the paper's tables (``sigma25``, ``x4`` or ``kernel``), as data."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        header, rows = paper_table(self.arguments[0])
        if not rows:
            raise self.error(f"the paper has no results with setting {self.arguments[0]!r}")
        container = nodes.container()
        self.state.nested_parse(
            StringList(list_table(header, rows)), self.content_offset, container
        )
        return container.children


def setup(app: Sphinx) -> dict:
    app.add_directive("conversenet-paper", ConversenetPaper)
    app.add_directive("conversenet-models", ConversenetModels)
    app.add_directive("conversenet-tasks", ConversenetTasks)
    return {"parallel_read_safe": True, "version": "1"}
