"""Typed dataclasses from plain data and YAML: the generic engine behind the training config.

- :func:`from_dict` builds a (nested) dataclass from a mapping, checking every key and
  converting every value against the field's annotation (int → float, YAML's "1e-4" string
  → float); an unknown key is a :class:`ConfigError` naming the valid keys and the closest.
- :func:`apply_overrides` applies ``section.key=value`` strings (values parsed as YAML),
  checking the keys against the schema.
- :func:`load_yaml` reads a YAML mapping with a safe loader that rejects duplicate keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

import yaml

__all__ = ["ConfigError", "apply_overrides", "from_dict", "load_yaml"]

# YAML 1.1 (PyYAML) reads exponent notation without a dot ("1e-5") as a string
_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


class ConfigError(ValueError):
    """An invalid configuration (unknown key, wrong type or bad value)."""


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{origin.__name__}[{args}]"
    return getattr(tp, "__name__", str(tp))


def _unknown_key_error(key: str, where: str, valid: Iterable[str]) -> ConfigError:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    place = f" in section {where!r}" if where else ""
    return ConfigError(f"unknown config key {key!r}{place}{hint} valid keys: {', '.join(valid)}")


def _sections_with(schema: type, key: str) -> list[str]:
    """The top-level sections (dataclass fields) of ``schema`` that have a field ``key``."""
    return [
        name
        for name, tp in typing.get_type_hints(schema).items()
        if dataclasses.is_dataclass(tp) and key in typing.get_type_hints(tp)
    ]


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (int -> float etc.)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(
            f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping (section), got {type(value).__name__} {value!r}"
            )
        return from_dict(tp, value, where)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(
                f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
            )
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        return {
            str(k): float(v) if isinstance(v, str) and _FLOAT_RE.fullmatch(v.strip()) else v
            for k, v in value.items()
        }
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def from_dict(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    """An instance of the dataclass ``cls`` from ``data``, every key and value checked."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            raise _unknown_key_error(str(key), where, names)
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}" if where else key)
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------
# overrides and files
# ---------------------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key given twice in one mapping."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"duplicate key {key!r} (line {key_node.start_mark.line + 1}): "
                "each key may appear only once"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override must look like key=value (e.g. optim.lr=2e-4), got {item!r}")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse the value of override {item!r}: {exc}") from None
    if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
        value = float(value)
    return key.split("."), value


def apply_overrides(schema: type, data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to plain data for the
    dataclass ``schema``.

    Keys are checked against the schema so that a typo names the valid keys; keys under a
    ``dict`` field are free.
    """
    data = dict(data)
    for item in overrides:
        path, value = _parse_override(item)
        node: dict[str, Any] = data
        cls: Any = schema
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if cls is not None:
                hints = typing.get_type_hints(cls)
                if part not in hints:
                    where = ".".join(path[:depth])
                    elsewhere = _sections_with(schema, part) if depth else []
                    if elsewhere:
                        raise ConfigError(
                            f"override {item!r}: section {where!r} has no key {part!r}; it is "
                            f"in section {elsewhere[0]!r}: {elsewhere[0]}.{part}"
                            f"={'.'.join(item.split('=', 1)[1:])}"
                        )
                    raise _unknown_key_error(part, where, hints)
                tp = hints[part]
                cls = tp if dataclasses.is_dataclass(tp) else None
                if not last and cls is None and typing.get_origin(tp) is not dict:
                    raise ConfigError(
                        f"override {item!r}: {'.'.join(path[: depth + 1])} is not a section"
                    )
            if last:
                node[part] = value
            else:
                child = node.get(part)
                child = dict(child) if isinstance(child, Mapping) else {}
                node[part] = child
                node = child
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (an empty file is ``{}``); duplicate keys are errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.load(f, Loader=_StrictLoader)  # a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: a config must be a YAML mapping, got {type(data).__name__}")
    return dict(data)
