"""Weight files: where they are, whether they are intact, and how they are loaded.

A :class:`PretrainedWeights` record says what a published file is (name, SHA-256, download
address, licence). :func:`resolve_weights` finds it, in this order:

1. the path given explicitly;
2. weights shipped inside the package (records without a download address) are in the
   package itself, and only there;
3. the folder named by the environment variable ``CONVERSENET_WEIGHTS``;
4. the user cache, ``$XDG_CACHE_HOME/conversenet`` (default ``~/.cache/conversenet``);
5. a download into the cache.

The file is SHA-256 checked exactly once per resolution, whatever its origin: a file with
the wrong digest raises :class:`WeightsChecksumError` and is never loaded (a bad download
is deleted; downloads go to a temporary file that is renamed into the cache only once
verified). Files are read with ``torch.load(weights_only=True)`` or safetensors, so no
pickled code is ever executed. This module knows nothing of the models: the registry
(:mod:`conversenet.models.registry`) holds the records.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = [
    "ENV_WEIGHTS",
    "PACKAGED_WEIGHTS_DIR",
    "UPSTREAM_LICENSE",
    "PretrainedWeights",
    "WeightsChecksumError",
    "WeightsFileError",
    "WeightsNotFoundError",
    "cache_dir",
    "download_weights",
    "find_weights",
    "load_state_dict",
    "load_weights_into",
    "resolve_weights",
    "saved_model_options",
    "sha256sum",
    "weights_dir_candidates",
]

#: Environment variable naming a folder that holds the official weight files.
ENV_WEIGHTS = "CONVERSENET_WEIGHTS"
#: Where the weights that ship with the package live.
PACKAGED_WEIGHTS_DIR = Path(__file__).resolve().parent / "assets"
UPSTREAM_LICENSE = (
    "not stated by the authors; see the upstream repository (cszn/ConverseNet) before "
    "redistributing"
)

_CHUNK = 1 << 20
_CONTAINER_KEYS = ("state_dict", "params_ema", "params", "ema", "model")


@dataclass(frozen=True)
class PretrainedWeights:
    """A published weight file: what it is, where it comes from and how to check it.

    Attributes:
        filename: file name in the local weight folders (and at the end of ``url``).
        sha256: hex SHA-256 digest of the file; every copy is checked against it.
        url: download address, or ``None`` for weights shipped inside the package
            (in :data:`PACKAGED_WEIGHTS_DIR`).
        license: terms of the weights.
        description: training setting (e.g. noise level). The task, scale and channels
            are those of the registry entry that holds the record.
    """

    filename: str
    sha256: str
    url: str | None
    license: str = UPSTREAM_LICENSE
    description: str = ""

    @property
    def packaged(self) -> bool:
        """Whether the file ships inside the package."""
        return self.url is None


class WeightsChecksumError(ValueError):
    """A weight file does not have the SHA-256 digest it is registered with."""


class WeightsNotFoundError(FileNotFoundError):
    """A published weight file is neither on disk nor downloadable."""


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


def weights_dir_candidates() -> list[Path]:
    """Folders searched for downloadable weight files, in order: ``$CONVERSENET_WEIGHTS``,
    then the cache."""
    folders = []
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        folders.append(Path(env).expanduser())
    folders.append(cache_dir())
    return folders


def find_weights(weights: PretrainedWeights) -> Path | None:
    """The local copy of ``weights`` (not checked), or None when there is none."""
    folders = [PACKAGED_WEIGHTS_DIR] if weights.packaged else weights_dir_candidates()
    for folder in folders:
        candidate = folder / weights.filename
        if candidate.is_file():
            return candidate
    return None


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
    """Download a published file into ``directory`` (default: :func:`cache_dir`).

    The bytes go to a temporary file in the same folder, are SHA-256 checked, then renamed
    into place with :func:`os.replace`: the folder never holds a partial or unverified
    file. Raises :class:`WeightsNotFoundError` when the download fails and
    :class:`WeightsChecksumError` (after deleting the download) on a digest mismatch.
    """
    if weights.url is None:
        raise ValueError(f"{weights.filename} ships inside the package and has no download")
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
    weights: PretrainedWeights | None,
    path: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
) -> Path:
    """Find (or download) a weight file and return its path, verified once.

    Args:
        weights: the published file's record, or ``None`` for a model without one (then
            ``path`` is required).
        path: an explicit file (or a folder holding ``weights.filename``). A file named
            like the published one is SHA-256 checked; any other file is returned
            unchecked (your own weights).
        download: allow the download as the last resort.
        progress: show a progress bar while downloading.

    Raises:
        WeightsChecksumError: a file that is present but has the wrong digest (not used).
        WeightsNotFoundError: not found and not downloadable; the message says where to
            put the file.
        FileNotFoundError: an explicit ``path`` that does not exist.
        ValueError: neither ``weights`` nor ``path``.
    """
    if path is not None:
        candidate = Path(path).expanduser()
        if candidate.is_dir():
            if weights is None or not (candidate / weights.filename).is_file():
                holding = f" (or a folder holding {weights.filename})" if weights else ""
                raise ValueError(
                    f"{candidate} is a folder, not a weights file: give the file itself{holding}"
                )
            candidate = candidate / weights.filename
        if not candidate.is_file():
            raise FileNotFoundError(f"weight file {candidate} does not exist")
        if weights is not None and candidate.name == weights.filename:
            _verify(candidate, weights.sha256)
        return candidate

    if weights is None:
        raise ValueError("no published weights to resolve; give a path")
    found = find_weights(weights)
    if found is not None:
        _verify(found, weights.sha256)
        return found
    if weights.packaged:
        raise WeightsNotFoundError(
            f"{weights.filename} should ship inside the package, in {PACKAGED_WEIGHTS_DIR}, "
            "but is not there: reinstall conversenet"
        )
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


class WeightsFileError(ValueError):
    """A weight file that cannot be read (truncated, not a weights file, pickled code)."""


def load_state_dict(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Tensor]:
    """Read a state_dict from ``path`` on the CPU, without executing pickled code.

    ``.safetensors`` files are read with safetensors, anything else with
    ``torch.load(weights_only=True)``. A ``{"state_dict": ...}``-style container
    (``state_dict``, ``params_ema``, ``params``, ``ema``, ``model``, the first present) is
    unwrapped, so a training checkpoint of this project gives its EMA weights, the ones
    its run exports; a ``module.`` prefix (DataParallel) is removed.

    Args:
        path: the file.
        sha256: when given, the file is checked first (:class:`WeightsChecksumError`).

    Raises:
        WeightsFileError: the file is not a readable weights file; the message names it.
    """
    path = Path(path)
    if sha256 is not None:
        _verify(path, sha256)
    if path.suffix == ".safetensors":
        try:
            return _unwrap(load_file(str(path), device="cpu"), path)
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsFileError(
                f"{path}: not a readable safetensors file ({_first_line(exc)})"
            ) from None
    try:
        with warnings.catch_warnings():  # about the pickle protocol of a file it reads or refuses
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # PyTorch's message suggests weights_only=False, i.e. running the file's code: never
        if "unsupported global" not in str(exc).lower():  # garbage, not an object of code
            raise WeightsFileError(
                f"{path}: not a readable PyTorch weights file (a damaged or foreign file)"
            ) from None
        raise WeightsFileError(
            f"{path} cannot be read with torch.load(weights_only=True): it holds objects "
            "other than tensors and plain containers, and conversenet never executes "
            "pickled code"
        ) from None
    except Exception as exc:  # foreign bytes make the unpickler raise any exception type
        raise WeightsFileError(
            f"{path}: not a readable PyTorch weights file, or truncated ({_first_line(exc)})"
        ) from None
    return _unwrap(obj, path)


def saved_model_options(path: str | os.PathLike) -> tuple[str | None, dict[str, Any]]:
    """The model name and constructor options stored in a safetensors file's metadata by
    ``conversenet train`` (``(None, {})`` for other files)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return None, {}
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsFileError(
            f"{path}: not a readable safetensors file ({_first_line(exc)})"
        ) from None
    try:
        options = json.loads(meta.get("options", "{}"))
    except json.JSONDecodeError:
        options = {}
    return meta.get("model"), options if isinstance(options, dict) else {}


def _first_line(exc: BaseException) -> str:
    """The first sentence of an exception's message (library messages run on)."""
    text = str(exc).strip().splitlines()
    return text[0].split(". ")[0].rstrip(".") if text else type(exc).__name__


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
