"""Training pairs: HQ images degraded on the fly, image g of the run a pure function of (seed, g).

Optimiser step s uses the global images g = s * batch_size + j, j < batch_size; rank r's accumulation micro-step
m takes the block j in [(m * world + r) * b, ... + b) with b = batch_size / (world * accum). So the union of a
step's images, their degradations and their noise are the same for any number of ranks and accumulation steps,
and a resumed run replays exactly the images it would have seen (the data position is the step).
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from multiprocessing.pool import AsyncResult
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from lpmrf_bench.data import DATASETS, Dataset, is_path_spec, open_dataset
from lpmrf_bench.data.base import DatasetError
from lpmrf_bench.data.degrade import PIPELINES, DegradationConfig, degrade
from lpmrf_bench.data.synthetic_faces import TrainingStream


class PairSource(Protocol):
    size: int

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(gt, lq) uint8 [H, W, 3] of global image `index`."""


@dataclass
class SyntheticPairs:
    """The unbounded synthetic-faces train stream; image g is `TrainingStream` batch g of size 1."""

    size: int
    seed: int
    config: DegradationConfig

    def __post_init__(self) -> None:
        self.stream = TrainingStream(size=self.size, batch_size=1, seed=self.seed, config=self.config)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        gt, lq = self.stream.arrays(index)
        return gt[0], lq[0]


@dataclass
class DatasetPairs:
    """HQ images of any dataset (its GT when paired, else its images), reshuffled every epoch by (seed, epoch),
    degraded with the key (seed, g)."""

    dataset: Dataset
    seed: int
    config: DegradationConfig

    def __post_init__(self) -> None:
        self.ids = list(self.dataset.image_ids())
        if not self.ids:
            raise DatasetError(f"{self.dataset.name}: no images to train on")
        self.size = int(self._hq(self.ids[0]).shape[0])
        self.config = self.config.scaled_to(self.size)

    def _hq(self, image_id: str) -> np.ndarray:
        sample = self.dataset.load(image_id)
        hq = sample.gt if sample.gt is not None else sample.lq
        if hq.shape[0] != hq.shape[1]:
            raise DatasetError(f"{self.dataset.name}/{image_id}: training needs square aligned crops, got "
                               f"{hq.shape[1]}x{hq.shape[0]}")
        return hq

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, k = divmod(index, len(self.ids))
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.ids))
        image_id = self.ids[int(order[k])]
        hq = self._hq(image_id)
        if hq.shape[0] != self.size:
            raise DatasetError(f"{self.dataset.name}/{image_id} is {hq.shape[0]} px; the first image was {self.size} px "
                               f"(training needs one size)")
        lq, gt, _ = degrade(hq, self.config, self.seed, f"train/{index}")
        return gt, lq


def _synthetic_size(spec: str) -> int | None:
    """The resolution of a `synthetic-faces[-N][:train]` spec, None for any other spec."""
    if is_path_spec(spec):
        return None
    name, _, split = spec.partition(":")
    if not name.startswith("synthetic-faces") or split not in ("", "train") or name not in DATASETS.names():
        return None
    return DATASETS.get(name).resolution


def default_validation(spec: str) -> str | None:
    """`synthetic-faces[-N]:val` for a synthetic-faces training spec (same size), None for other data."""
    if _synthetic_size(spec) is None:
        return None
    return f"{spec.partition(':')[0]}:val"


def open_pairs(spec: str, degradation: str, seed: int, data_root: str | None = None) -> PairSource:
    """The pair source of a `--data` spec, degraded by the named pipeline."""
    if degradation not in PIPELINES:
        raise DatasetError(f"unknown degradation {degradation!r}; known: {', '.join(PIPELINES)}")
    config = PIPELINES[degradation]
    size = _synthetic_size(spec)
    if size is not None:
        return SyntheticPairs(size, seed, config)
    return DatasetPairs(open_dataset(spec, data_root), seed, config)


def _render(source: PairSource, indices: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [source.pair(i) for i in indices]


class PairLoader:
    """Micro-batches of pairs, rendered inline or `workers` spawned processes ahead (the same images either way:
    a pair is a pure function of its index). `prefetch(indices)` queues a coming micro-batch."""

    def __init__(self, source: PairSource, workers: int = 0):
        self.source = source
        self.pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 0 else None
        self.pending: dict[tuple[int, ...], AsyncResult] = {}

    def prefetch(self, indices: Sequence[int]) -> None:
        key = tuple(indices)
        if self.pool is not None and key not in self.pending:
            self.pending[key] = self.pool.apply_async(_render, (self.source, key))

    def load(self, indices: Sequence[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(gt, lq) float [B, 3, H, W] in [0, 1] of the global images `indices`."""
        key = tuple(indices)
        pending = self.pending.pop(key, None)
        pairs = pending.get() if pending is not None else _render(self.source, key)
        gt, lq = (torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2).float().div_(255.0).to(device)
                  for a in zip(*pairs))
        return gt, lq

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None


def micro_indices(step: int, batch_size: int, rank: int, world: int, micro: int, accum: int) -> range:
    """Positions j within the global batch of rank `rank`'s micro-step `micro` (see the module docstring)."""
    b = batch_size // (world * accum)
    first = (micro * world + rank) * b
    return range(first, first + b)
