"""The task rules: each front end reads its words and suffixes from the Task."""

from __future__ import annotations

import subprocess
import sys

from conversenet.cli.parsers import build_parser
from conversenet.tasks import COMMAND_TASKS, TASK_REGISTRY, command_task
from conversenet.web import TASKS as WEB_TASKS


def test_every_command_task_has_its_words():
    assert COMMAND_TASKS == ("denoise", "sr", "deblur")
    for name in COMMAND_TASKS:
        task = command_task(name)
        assert task.summary and task.label and task.done and task.output_suffix
    assert command_task("sr").suffix(scale=2) == "_x2"
    assert command_task("deblur", with_kernel=True).suffix() == "_deblurred"
    # both deblurring tasks run under one command, with the same words
    blind, nonblind = TASK_REGISTRY["deblur"], TASK_REGISTRY["deblur_nonblind"]
    assert (blind.summary, blind.output_suffix) == (nonblind.summary, nonblind.output_suffix)


def test_the_command_line_and_the_app_use_the_tasks_words():
    assert {name: command_task(name).label for name in COMMAND_TASKS} == WEB_TASKS
    helps = build_parser()._subparsers._group_actions[0].choices
    for name in COMMAND_TASKS:
        text = helps[name].format_help()
        assert command_task(name).summary.capitalize() in " ".join(text.split())
        assert repr(command_task(name).suffix(scale=4)) in " ".join(text.split())


def test_the_task_rules_load_without_pytorch():
    code = "import sys, conversenet.tasks; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
