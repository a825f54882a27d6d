"""Finding, downloading, checking and loading weight files.

An official checkpoint is looked for, in this order:

1. the path given explicitly (``create_model(..., weights=path)``);
2. the folder named by the environment variable ``CONVERSENET_WEIGHTS``;
3. the user cache, ``$XDG_CACHE_HOME/conversenet`` (default ``~/.cache/conversenet``);
4. a download from the upstream repository into the cache.

Every official file is SHA-256 checked before use, whatever its origin: a file with the
wrong digest raises :class:`WeightsChecksumError` and is never loaded (a bad download is
deleted; downloads go to a temporary file that is renamed into the cache only once
verified). Files are read with ``torch.load(weights_only=True)`` or safetensors, so no
pickled code is ever executed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from .models.registry import ModelInfo, PretrainedWeights, get_model_info

__all__ = [
    "ENV_WEIGHTS",
    "WeightsChecksumError",
    "WeightsNotFoundError",
    "cache_dir",
    "download_weights",
    "load_state_dict",
    "load_weights_into",
    "resolve_weights",
    "sha256sum",
    "weights_dir_candidates",
]

#: Environment variable naming a folder that holds the official weight files.
ENV_WEIGHTS = "CONVERSENET_WEIGHTS"

_CHUNK = 1 << 20
_CONTAINER_KEYS = ("state_dict", "params_ema", "params", "model")


class WeightsChecksumError(ValueError):
    """A weight file does not have the SHA-256 digest it is registered with."""


class WeightsNotFoundError(FileNotFoundError):
    """An official weight file is neither on disk nor downloadable."""


def sha256sum(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """The user cache for weights: ``$XDG_CACHE_HOME/conversenet`` or ``~/.cache/conversenet``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "conversenet"


PACKAGED_WEIGHTS_DIR = Path(__file__).resolve().parent / "assets"


def weights_dir_candidates() -> list[Path]:
    """Folders searched for weight files, in order: ``$CONVERSENET_WEIGHTS``, the cache, and
    the weights shipped inside the package (``conversenet/assets``)."""
    folders = []
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        folders.append(Path(env).expanduser())
    folders.append(cache_dir())
    folders.append(PACKAGED_WEIGHTS_DIR)
    return folders


def _official(name_or_info: str | ModelInfo | PretrainedWeights) -> PretrainedWeights | None:
    if isinstance(name_or_info, PretrainedWeights):
        return name_or_info
    if isinstance(name_or_info, ModelInfo):
        return name_or_info.pretrained
    if isinstance(name_or_info, str):
        return get_model_info(name_or_info).pretrained
    raise TypeError(
        f"expected a model name, ModelInfo or PretrainedWeights, got {type(name_or_info).__name__}"
    )


def _verify(path: Path, expected: str) -> None:
    actual = sha256sum(path)
    if actual != expected.lower():
        raise WeightsChecksumError(
            f"SHA-256 mismatch for weight file {path}: expected {expected}, got {actual}. "
            "The file is corrupt or not the official one; it was not used. Delete it (or "
            "replace it with a good copy) and try again."
        )


def _where_to_put(weights: PretrainedWeights) -> str:
    env = os.environ.get(ENV_WEIGHTS)
    folder = f"the folder {env} ({ENV_WEIGHTS})" if env else f"a folder named by {ENV_WEIGHTS}"
    return (
        f"Download {weights.url} yourself and put {weights.filename} in {folder} or in "
        f"the cache {cache_dir()}, or pass weights=<path to the file>."
    )


def download_weights(
    weights: PretrainedWeights, directory: str | os.PathLike | None = None, progress: bool = True
) -> Path:
    """Download an official file into ``directory`` (default: :func:`cache_dir`).

    The bytes go to a temporary file in the same folder, are SHA-256 checked, then renamed
    into place with :func:`os.replace`: the folder never holds a partial or unverified
    file. Raises :class:`WeightsNotFoundError` when the download fails and
    :class:`WeightsChecksumError` (after deleting the download) on a digest mismatch.
    """
    from tqdm.auto import tqdm

    folder = Path(directory) if directory is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / weights.filename
    fd, tmp_name = tempfile.mkstemp(prefix=f".{weights.filename}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(weights.url, timeout=60) as response:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    with tqdm(
                        total=total,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=weights.filename,
                        disable=not progress,
                    ) as bar:
                        while chunk := response.read(_CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            bar.update(len(chunk))
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise WeightsNotFoundError(
                    f"could not download {weights.filename} from {weights.url} ({exc}). "
                    + _where_to_put(weights)
                ) from exc
        actual = digest.hexdigest()
        if actual != weights.sha256.lower():
            raise WeightsChecksumError(
                f"SHA-256 mismatch for the download of {weights.filename} from {weights.url}: "
                f"expected {weights.sha256}, got {actual}. The download was deleted."
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve_weights(
    name_or_info: str | ModelInfo | PretrainedWeights,
    path: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """Find (or download) a weight file and return its verified path.

    Args:
        name_or_info: a registered model name, its :class:`ModelInfo`, or a
            :class:`PretrainedWeights`.
        path: an explicit file (or a folder holding the official file name). A file named
            like the official checkpoint is SHA-256 checked; any other file is returned
            unchecked (your own weights).
        download: allow the download as the last resort.
        progress: show a progress bar while downloading.

    Raises:
        WeightsChecksumError: an official file with the wrong digest (it is not used).
        WeightsNotFoundError: not found and not downloadable; the message says where to
            put the file.
        FileNotFoundError: an explicit ``path`` that does not exist.
        ValueError: no ``path`` and the model has no published weights.
    """
    weights = _official(name_or_info)
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_dir():
            if weights is None:
                raise ValueError(f"{candidate} is a folder; give the weight file itself")
            candidate = candidate / weights.filename
        if not candidate.is_file():
            raise FileNotFoundError(f"weight file {candidate} does not exist")
        if weights is not None and candidate.name == weights.filename:
            _verify(candidate, weights.sha256)
        return candidate

    if weights is None:
        raise ValueError(f"{name_or_info!r} has no published weights; give a path")
    for folder in weights_dir_candidates():
        candidate = folder / weights.filename
        if candidate.is_file():
            _verify(candidate, weights.sha256)
            return candidate
    if not download:
        raise WeightsNotFoundError(
            f"{weights.filename} not found in {', '.join(map(str, weights_dir_candidates()))} "
            "and downloading is disabled. " + _where_to_put(weights)
        )
    return download_weights(weights, cache_dir(), progress=progress)


def _unwrap(obj: object, source: Path) -> dict[str, Tensor]:
    if isinstance(obj, Mapping) and not all(isinstance(v, Tensor) for v in obj.values()):
        for key in _CONTAINER_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
    ):
        raise ValueError(
            f"{source} does not hold a state_dict (a mapping of names to tensors, possibly "
            f"under one of the keys {_CONTAINER_KEYS}); got {type(obj).__name__}"
        )
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_state_dict(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Tensor]:
    """Read a state_dict from ``path`` on the CPU, without executing pickled code.

    ``.safetensors`` files are read with safetensors, anything else with
    ``torch.load(weights_only=True)``. A ``{"state_dict": ...}``-style container
    (``state_dict``, ``params_ema``, ``params``, ``model``) is unwrapped and a
    ``module.`` prefix (DataParallel) removed.

    Args:
        path: the file.
        sha256: when given, the file is checked first (:class:`WeightsChecksumError`).
    """
    path = Path(path)
    if sha256 is not None:
        _verify(path, sha256)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return _unwrap(load_file(str(path), device="cpu"), path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path} cannot be read with torch.load(weights_only=True): it holds objects "
            "other than tensors and plain containers, and conversenet never executes "
            f"pickled code ({exc})"
        ) from exc
    return _unwrap(obj, path)


def load_weights_into(
    model: nn.Module, state_dict: Mapping[str, Tensor], source: object = "state_dict"
) -> None:
    """Load ``state_dict`` into ``model`` strictly, with an explicit error when it does not fit.

    Raises:
        ValueError: missing or unexpected keys, or shape mismatches (all listed).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:

        def show(items: list[str]) -> str:
            head = ", ".join(items[:8])
            return head + (f", ... ({len(items)} in all)" if len(items) > 8 else "")

        problems = [
            f"{label} ({len(items)}): {show(items)}"
            for label, items in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches", mismatched),
            )
            if items
        ]
        raise ValueError(
            f"weights from {source} do not fit {type(model).__name__}: "
            + "; ".join(problems)
            + ". Build the model with the arguments the weights were trained with."
        )
    model.load_state_dict(state_dict, strict=True)
