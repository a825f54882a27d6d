"""``.. conversenet-cli::``: the command-line reference, generated from the argparse parsers.

Every sub-command of ``conversenet`` (from :func:`conversenet.cli.build_parser`) gets a
section with its summary, description, usage and one ``.. option::`` entry per argument
(its help text, choices and default), so ``:option:`conversenet denoise --tile``` links
to it. Nothing is written by hand: a new command or option appears by itself.
"""

from __future__ import annotations

import argparse
import re

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

from conversenet.cli import build_parser

_SPECIAL = re.compile(r"([\\`*_|\[\]<>:])")


def escape(text: str) -> str:
    """Plain text as reST that renders as the same text (no markup, no references)."""
    return _SPECIAL.sub(r"\\\1", text)


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """``(name, one-line summary, parser)`` of each sub-command, in ``--help`` order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, summaries.get(name, ""), p) for name, p in action.choices.items()]
    return []


def _option_lines(parser: argparse.ArgumentParser, action: argparse.Action) -> list[str]:
    formatter = parser._get_formatter()
    if action.option_strings:
        invocation = formatter._format_action_invocation(action)
    else:
        invocation = formatter._metavar_formatter(action, action.dest.upper())(1)[0]
    help_text = formatter._expand_help(action) if action.help else ""
    facts = []
    if action.choices is not None and "{" not in invocation:
        facts.append("choices: " + ", ".join(str(c) for c in action.choices))
    shows_default = "default" in help_text.lower()
    if (
        action.option_strings
        and action.default not in (None, False, argparse.SUPPRESS, [])
        and action.nargs != 0
        and not shows_default
    ):
        facts.append(f"default: {action.default}")
    text = help_text.rstrip(".") + (f" ({'; '.join(facts)})" if facts else "")
    lines = [f".. option:: {invocation}", ""]
    lines += [f"   {escape(line)}" for line in (text or "(no description)").splitlines()]
    return [*lines, ""]


def command_rst(prog: str, name: str, summary: str, parser: argparse.ArgumentParser) -> list[str]:
    title = f"``{prog} {name}``"
    lines = [f".. _cli-{name}:", "", title, "-" * len(title), ""]
    lines += [escape(summary[:1].upper() + summary[1:]) + ".", ""] if summary else []
    if parser.description:
        for paragraph in parser.description.strip().split("\n\n"):
            lines += [escape(" ".join(paragraph.split())), ""]
    lines += ["::", ""]
    lines += [f"   {line}" for line in parser.format_usage().strip().splitlines()]
    lines += ["", f".. program:: {prog} {name}", ""]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        lines += _option_lines(parser, action)
    if parser.epilog:
        lines += [escape(" ".join(parser.epilog.split())), ""]
    return lines


class ConversenetCli(SphinxDirective):
    """Insert the reference of every ``conversenet`` sub-command."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        parser = build_parser()
        lines = ["Global options:", "", ".. program:: conversenet", ""]
        for action in parser._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                lines += _option_lines(parser, action)
        for name, summary, sub in subcommands(parser):
            lines += command_rst(parser.prog, name, summary, sub)
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(
            self.state, StringList(lines, source="<conversenet-cli>"), container
        )
        return container.children


def setup(app: Sphinx) -> dict:
    app.add_directive("conversenet-cli", ConversenetCli)
    return {"parallel_read_safe": True, "version": "1"}
