"""conversenet: reverse convolution (Converse2D) and the ConverseNet restoration models.

The names below load on first use (PEP 562), so that ``import conversenet`` and the
``conversenet`` command's ``--help`` start without PyTorch.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from ._version import __version__

#: public name -> the module that defines it (a module re-exported as itself maps to None)
_EXPORTS = {
    "Converse1d": "operator",
    "Converse2D": "operator",
    "Converse3d": "operator",
    "ConverseBlock": "models.blocks",
    "ConverseBlockAlpha": "models.blocks",
    "ConverseUpsample": "operator",
    "LayerNorm2d": "models.blocks",
    "Restorer": "inference",
    "create_model": "models",
    "functional": None,
    "get_model_info": "models",
    "list_models": "models",
    "load_image": "io",
    "models": None,
    "restore": "inference",
    "reuse_freed_memory": "runtime",
    "sample_image": "samples",
    "save_image": "io",
    "tasks": None,
    "weights": None,
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    # any sub-module loads on first use too (`conversenet.io`, ...); the deprecated aliases
    # (`conversenet.hub`, `conversenet.spectral`, ...) warn then
    if name not in _EXPORTS and importlib.util.find_spec(f"{__name__}.{name}") is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f".{_EXPORTS.get(name) or name}", __name__)
    value = module if _EXPORTS.get(name) is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
