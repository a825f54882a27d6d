"""Run files from ``conversenet export`` in onnxruntime, with the usual tiling and image I/O.

    >>> from conversenet.onnx_backend import make_onnx_restorer
    >>> restorer = make_onnx_restorer("dncnn.onnx", "denoise")
    >>> clean, notes = restorer(noisy_uint8)  # as conversenet.inference.Restorer

``Restorer("denoise", "dncnn.onnx")`` is the same restorer (with onnxruntime's own
number of threads): :func:`conversenet.inference.load_model` loads a ``.onnx`` file as an
:class:`OnnxModule`, which wraps an onnxruntime session in an ``nn.Module`` and carries
the file's :class:`~conversenet.models.ModelSpec`. :func:`read_onnx_metadata` reads the
``metadata_props`` that :mod:`conversenet.export` writes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .inference import Restorer
from .onnx_model import (
    OnnxModelInfo,
    OnnxModule,
    check_onnx_options,
    create_session,
    read_onnx_metadata,
)

__all__ = [
    "OnnxModelInfo",
    "OnnxModule",
    "create_session",
    "make_onnx_restorer",
    "read_onnx_metadata",
]


def make_onnx_restorer(
    path: str | os.PathLike,
    task: str,
    *,
    model: str | None = None,
    threads: int | None = None,
    **options: Any,
) -> Restorer:
    """A :class:`~conversenet.inference.Restorer` that runs an exported file in onnxruntime.

    Takes the options of ``Restorer``; ``model`` (if given) must name the exported model,
    ``weights`` and ``model_options`` must be unset (the file holds both) and ``device``
    the CPU; ``threads``: onnxruntime's intra-op threads. ``colour_route`` must be
    ``"auto"``: the file holds one model, so colour images are not routed to another (a
    gray file restores them as :class:`Restorer` does, in the basis
    :func:`~conversenet.colour.gray_model_basis` gives; a colour file on a JPEG with
    subsampled chroma says that the gray model does better). ``tile="auto"`` uses the
    file's tile (:meth:`OnnxModelInfo.spec`): its size for a fixed-size export (the images
    are cut into tiles of exactly that size, the last ones padded), ``preferred_tile`` for
    a dynamic one.

    Raises:
        ValueError: the file does not fit the task or the options.
    """
    check_onnx_options(options)
    options.pop("download", None)  # nothing to download: the weights are inside the file
    module = OnnxModule(path, threads=threads)
    if model is not None and model != module.info.model:
        raise ValueError(f"{Path(path).name} holds {module.info.model}, not {model}")
    return Restorer(task, module, **options)
