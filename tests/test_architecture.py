"""The package's imports run one way (ARCHITECTURE.md): no cycle, no module importing a
module of a later layer, and imports of the package's own modules at the top of files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "conversenet"

# ARCHITECTURE.md's layers: a module may import modules of its own layer or of earlier ones.
LAYERS = {
    "_version": 0,
    "checks": 0,
    "tasks": 0,
    "runtime": 0,
    "paper": 0,
    "_deprecated": 0,
    "operator": 1,
    "functional": 1,
    "io": 2,
    "samples": 2,
    "metrics": 2,
    "colour": 2,
    "tensors": 2,
    "data": 2,
    "weights": 3,
    "models": 4,
    "runner": 5,
    "onnx_model": 5,
    "inference": 6,
    "evaluation": 6,
    "training": 6,
    "onnx_backend": 6,
    "export": 6,
    "web": 6,
    "hub": 6,  # the deprecated alias of weights, which also takes model names
    # deprecated aliases of the modules that moved into operator (and models.blocks)
    "spectral": 6,
    "reverse_conv": 6,
    "dft": 6,
    "layers": 6,
    "layers_nd": 6,
    "upsample": 6,
    "cli": 7,
    "__init__": 8,
    "__main__": 8,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, whether the import sits inside a function) for own-package imports."""
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inside = {
        id(node)
        for func in ast.walk(tree)
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(func)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from pkg import module` imports the module; `from module import name`, the module
            targets = [
                f"{target}.{a.name}" if _file(f"{target}.{a.name}") else target for a in node.names
            ]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            if target.startswith("conversenet") and _file(target) is not None:
                found.append((target, id(node) in inside))
    return found


def _file(module: str) -> Path | None:
    path = PACKAGE.parent.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    return LAYERS[key]


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_are_at_the_top_and_run_one_way(path):
    name = _module_name(path)
    for target, in_function in _imports(path):
        assert not in_function, f"{name} imports {target} inside a function"
        if target.split(".")[:2] != name.split(".")[:2]:  # another top-level module
            assert _layer(target) <= _layer(name), (
                f"{name} (layer {_layer(name)}) imports {target} (layer {_layer(target)})"
            )


def test_no_import_cycle():
    graph = {_module_name(p): {t for t, _ in _imports(p)} for p in FILES}
    graph = {m: {_module_name(_file(t)) for t in ts} - {m} for m, ts in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in graph.get(module, ()):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_every_top_level_module_has_a_layer():
    names = {_module_name(p).split(".")[1] if "." in _module_name(p) else "__init__" for p in FILES}
    assert names <= set(LAYERS), sorted(names - set(LAYERS))
