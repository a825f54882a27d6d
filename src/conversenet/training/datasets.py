"""Training data: random patches of clean images, degraded on the fly.

Every random decision for a sample (which image, where to crop, which of the 8
flips/rotations, the noise level, the noise, the blur kernel) is drawn from
``numpy.random.default_rng([seed, epoch, index])``. A sample is therefore a pure function
of ``(seed, epoch, index)``: it does not depend on the data-loader worker that makes it,
on the number of workers or ranks, or on what was drawn before, so an interrupted run
resumed at any step sees exactly the data of an uninterrupted one.

:class:`ShardedSampler` yields ``(epoch, index)`` pairs: a seeded permutation per epoch,
truncated to whole global batches and split across data-parallel ranks (rank ``r`` takes
every ``world``-th index), so the union of the ranks' batches at a step is the batch a
single process would draw with the same global batch size.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from ..data import degradations as D
from ..io import IMAGE_EXTENSIONS, ImageFileError, load_image
from ..tensors import image_to_tensor
from .config import Config

__all__ = [
    "PatchDataset",
    "ShardedSampler",
    "augment",
    "build_degradation",
    "list_image_files",
    "read_training_image",
    "worker_init_fn",
]


def list_image_files(folders: str | Path | Sequence[str | Path]) -> list[Path]:
    """Image files in one or several folders (searched recursively), sorted per folder."""
    if isinstance(folders, (str, Path)):
        folders = [folders]
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"training image folder not found: {str(folder)!r}")
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {str(folder)!r}")
        files.extend(found)
    return files


def read_training_image(path: str | Path, channels: int) -> np.ndarray:
    """Read an image as uint8, H×W×``channels`` (gray from RGB with the ITU-R 601 weights)."""
    img = load_image(path)
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float64) / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"{path}: unsupported image dtype {img.dtype}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] in (2, 4):  # drop alpha
        img = img[:, :, :-1]
    if channels == 1 and img.shape[2] == 3:
        weights = np.array([0.299, 0.587, 0.114])
        img = np.round(img.astype(np.float64) @ weights)[:, :, None].astype(np.uint8)
    elif channels == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)


def augment(img: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations of the square's symmetry group (mode 0 = identity).

    ``mode % 4`` quarter turns counter-clockwise, preceded by a vertical flip when
    ``mode >= 4``. Works on H×W×C (or H×W) arrays.
    """
    if not 0 <= mode < 8:
        raise ValueError(f"mode must be in 0..7, got {mode}")
    if mode >= 4:
        img = img[::-1]
    return np.ascontiguousarray(np.rot90(img, k=mode % 4, axes=(0, 1)))


def _kernel_sources(cfg: Config) -> list:
    size = cfg.degradation.kernel_size
    wide_motion = functools.partial(
        D.random_motion_kernel, centre="support", supersample=4, length_range=(0.5, 3.0)
    )
    makers = {
        "gaussian": D.random_anisotropic_gaussian_kernel,
        "motion": D.random_motion_kernel,
        "wide_motion": wide_motion,
        "shake": functools.partial(wide_motion, uneven_exposure=4.0, thickness=1.0),
        "heavy_shake": functools.partial(wide_motion, uneven_exposure=8.0, thickness=1.0),
    }
    return [functools.partial(makers[name], size) for name in cfg.degradation.kernel_types]


def build_degradation(cfg: Config) -> D.Degradation:
    """The on-the-fly degradation of the configured task."""
    g = cfg.degradation
    if cfg.task == "denoise":
        sigma = g.sigma if g.sigma is not None else tuple(g.sigma_range)
        return D.DenoiseDegradation(sigma)
    if cfg.task == "sr":
        return D.SRDegradation(g.scale)
    return D.DeblurDegradation(
        _kernel_sources(cfg),
        noise=tuple(g.sigma_range),
        nonblind=cfg.task == "deblur_nonblind",
        grain=tuple(g.grain_range or (0.0, 0.0)),
    )


class PatchDataset(Dataset):
    """Random degraded patches of clean images, indexed by ``(epoch, index)``.

    The dataset has ``len(images) * repeat`` items per epoch; item ``index`` crops image
    ``index % len(images)``. Returns a dict with ``input`` (the degraded patch),
    ``target`` (the clean patch), both float32 (C, H, W) in [0, 1], and ``kernel``
    (1, k, k) for non-blind deblurring.

    Args:
        files: image paths.
        degradation: a :class:`conversenet.data.degradations.Degradation`.
        patch_size: side of the clean (target) patch.
        channels: 1 (gray) or 3 (RGB).
        seed: base seed of the run.
        repeat: patches per image per epoch.
        cache: decode every image once and keep it in memory.
        skip_unreadable: leave out the images that cannot be read (listed in ``skipped``)
            instead of refusing the data set.

    Every image is decoded once here (and kept when ``cache``), so an unreadable or too
    small one is reported by name before training starts, not in a data-loader worker.
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        degradation: D.Degradation,
        patch_size: int,
        channels: int = 1,
        seed: int = 0,
        repeat: int = 1,
        cache: bool = True,
        skip_unreadable: bool = False,
    ) -> None:
        if not files:
            raise ValueError("PatchDataset needs at least one image file")
        self.degradation = degradation
        self.patch_size = int(patch_size)
        self.channels = int(channels)
        self.seed = int(seed)
        self.repeat = int(repeat)
        self.files: list[Path] = []
        self.skipped: list[tuple[Path, str]] = []
        images = []
        for path in map(Path, files):
            try:
                image = self._read_file(path)
            except (ImageFileError, ValueError, OSError) as err:
                self.skipped.append((path, str(err)))
                continue
            self.files.append(path)
            if cache:
                images.append(image)
        if self.skipped and not skip_unreadable:
            listing = "; ".join(
                reason if reason.startswith(str(path)) else f"{path}: {reason}"
                for path, reason in self.skipped[:5]
            )
            more = f" (and {len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
            raise ValueError(
                f"{len(self.skipped)} training image(s) cannot be used: {listing}{more}. "
                "Remove them, or set data.skip_unreadable: true to train without them"
            )
        if not self.files:
            raise ValueError("none of the training images can be used")
        self._cache: list[np.ndarray] | None = images if cache else None

    @classmethod
    def from_config(cls, cfg: Config) -> PatchDataset:
        return cls(
            list_image_files(cfg.data.train_dirs),
            build_degradation(cfg),
            cfg.data.patch_size,
            cfg.data.channels,
            cfg.train.seed,
            cfg.data.repeat,
            cfg.data.cache_images,
            cfg.data.skip_unreadable,
        )

    def _read_file(self, path: Path) -> np.ndarray:
        img = read_training_image(path, self.channels)
        h, w = img.shape[:2]
        if h < self.patch_size or w < self.patch_size:
            raise ValueError(f"{path} is {h}x{w}, smaller than the patch size {self.patch_size}")
        return img

    def image(self, i: int) -> np.ndarray:
        return self._cache[i] if self._cache is not None else self._read_file(self.files[i])

    def __len__(self) -> int:
        return len(self.files) * self.repeat

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = np.random.default_rng([self.seed, epoch, index])
        img = self.image(index % len(self.files))
        h, w = img.shape[:2]
        p = self.patch_size
        top = int(rng.integers(0, h - p + 1))
        left = int(rng.integers(0, w - p + 1))
        patch = augment(img[top : top + p, left : left + p], int(rng.integers(8)))
        hq = image_to_tensor(patch)[0]
        out = self.degradation.apply(hq, rng)
        sample = {"input": out[0].float().contiguous(), "target": out[1].float().contiguous()}
        if len(out) > 2:
            sample["kernel"] = out[2].float().contiguous()
        return sample


class ShardedSampler(DistributedSampler):
    """A :class:`~torch.utils.data.DistributedSampler` over whole global batches.

    Each epoch draws a permutation from a ``torch.Generator`` seeded with ``seed + epoch``,
    keeps the first ``num_batches * global_batch`` indices and gives rank ``r`` the indices
    ``r, r + world, r + 2 world, ...``. It yields ``(epoch, index)`` pairs for
    :class:`PatchDataset`. ``set_epoch(epoch, start_batch)`` also skips the first
    ``start_batch`` per-rank batches (to resume in the middle of an epoch).
    """

    def __init__(
        self,
        dataset: Dataset,
        global_batch: int,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        if global_batch % num_replicas:
            raise ValueError(
                f"the global batch size ({global_batch}) must be divisible by the number "
                f"of processes ({num_replicas})"
            )
        self.global_batch = int(global_batch)
        self.local_batch = self.global_batch // num_replicas
        self.batches_per_epoch = len(dataset) // self.global_batch
        if self.batches_per_epoch < 1:
            raise ValueError(
                f"one epoch has {len(dataset)} patches, fewer than one global batch "
                f"({global_batch}); raise data.repeat or lower data.batch_size"
            )
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        super().set_epoch(epoch)
        if not 0 <= start_batch <= self.batches_per_epoch:
            raise ValueError(f"start_batch must be in [0, {self.batches_per_epoch}]")
        self.start_batch = int(start_batch)

    def epoch_indices(self, epoch: int) -> list[int]:
        """All indices of an epoch for this rank, before skipping."""
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        order = order[: self.batches_per_epoch * self.global_batch]
        return order[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = self.epoch_indices(self.epoch)[self.start_batch * self.local_batch :]
        return iter([(self.epoch, i) for i in indices])

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.local_batch


def worker_init_fn(worker_id: int) -> None:
    """Seed Python, NumPy and torch in a data-loader worker from torch's per-worker seed.

    The samples themselves do not use these generators (see the module docstring); this
    keeps any other randomness in a worker reproducible too.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
