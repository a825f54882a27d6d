"""torch.hub entry points: one per registered model.

    >>> import torch
    >>> model = torch.hub.load("path/to/conversenet", "converse_dncnn", source="local",
    ...                        pretrained=True)
    >>> torch.hub.load("OWNER/conversenet", "converse_dncnn", pretrained=True)  # from GitHub

Each entry point takes ``pretrained`` (load the published weights, SHA-256 checked),
``weights`` (a weights file instead) and constructor overrides, as
:func:`conversenet.create_model`. The code comes from this checkout's ``src/`` folder.
"""

from __future__ import annotations

import os
import sys

from torch import nn

dependencies = ["torch", "numpy", "scipy", "PIL", "safetensors", "yaml"]

# Load the package from this checkout (torch.hub runs this file from the repository root).
_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
if os.path.isdir(_SRC) and _SRC not in sys.path:
    sys.path.insert(0, _SRC)

# private names: torch.hub lists every public callable of this file as an entry point
from conversenet.models import create_model as _create_model  # noqa: E402
from conversenet.models import get_model_info as _get_model_info  # noqa: E402
from conversenet.models import list_models as _list_models  # noqa: E402


def _entry_point(name: str):
    info = _get_model_info(name)

    def load(
        pretrained: bool = False, weights: str | os.PathLike | None = None, **overrides: object
    ) -> nn.Module:
        return _create_model(name, pretrained=pretrained, weights=weights, **overrides)

    weights_line = (
        f"Published weights: {info.pretrained.filename} ({info.pretrained.description})."
        if info.pretrained is not None
        else "No published weights: pass weights=FILE, or train it."
    )
    load.__name__ = load.__qualname__ = name
    load.__doc__ = (
        f"{info.description}.\n\nTask {info.task}, {info.in_channels} channel(s), scale "
        f"{info.scale}. {weights_line}\n\nArgs: pretrained (bool), weights (file), and "
        "constructor overrides; returns the model in training mode (call .eval())."
    )
    return load


for _name in _list_models():
    globals()[_name] = _entry_point(_name)
del _name
