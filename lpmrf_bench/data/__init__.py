"""Datasets by name: the registry of named sets and the resolution of dataset specs.

A spec is `NAME` or `NAME:split` (a registered set) or a directory path (LQ-only, or paired when it holds
`lq/` and `gt/`). Named sets that live on disk are found under the data root: `--data-root` or the
`LPMRF_BENCH_DATA` environment variable.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lpmrf_bench.data.base import Dataset, DatasetError, Sample
from lpmrf_bench.data.folder import FolderDataset, open_folder
from lpmrf_bench.registry import Registry

DATA_ROOT_ENV = "LPMRF_BENCH_DATA"


@dataclass(frozen=True)
class DatasetSpec:
    """Metadata of a named set (shown by `list datasets` without touching disk) and how to open it."""

    name: str
    open: Callable[[str, Path | None], Dataset]  # (split, data_root) -> Dataset
    splits: tuple[str, ...] = ("test",)
    paired: bool = True
    resolution: int | None = 512
    counts: dict[str, int] = field(default_factory=dict)  # expected images per split
    description: str = ""
    source: str = ""  # where the files are published
    licence: str = ""

    @property
    def default_split(self) -> str:
        return "test" if "test" in self.splits else self.splits[0]


DATASETS: Registry[DatasetSpec] = Registry("dataset")
for _name, _target in {
    "synthetic-faces": "lpmrf_bench.data.synthetic_faces:SYNTHETIC_FACES",
    "synthetic-faces-128": "lpmrf_bench.data.synthetic_faces:SYNTHETIC_FACES_128",
    "synthetic-faces-256": "lpmrf_bench.data.synthetic_faces:SYNTHETIC_FACES_256",
    "synthetic-faces-512": "lpmrf_bench.data.synthetic_faces:SYNTHETIC_FACES_512",
    "celeba-test": "lpmrf_bench.data.benchmark_sets:CELEBA_TEST",
    "lfw-test": "lpmrf_bench.data.benchmark_sets:LFW_TEST",
    "webphoto-test": "lpmrf_bench.data.benchmark_sets:WEBPHOTO_TEST",
    "wider-test": "lpmrf_bench.data.benchmark_sets:WIDER_TEST",
}.items():
    DATASETS.add(_name, _target)


def data_root(override: str | os.PathLike | None = None) -> Path | None:
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser() if env else None


def is_path_spec(spec: str) -> bool:
    return os.sep in spec or spec.startswith((".", "~")) or Path(spec).is_dir()


def open_dataset(spec: str, root: str | os.PathLike | None = None) -> Dataset:
    """Resolve a dataset spec to an opened dataset."""
    if is_path_spec(spec):
        return open_folder(Path(spec).expanduser())
    name, _, split = spec.partition(":")
    entry = DATASETS.get(name)
    split = split or entry.default_split
    if split not in entry.splits:
        raise DatasetError(f"dataset {name!r} has no split {split!r} (its splits: {', '.join(entry.splits)})")
    return entry.open(split, data_root(root))


__all__ = ["DATASETS", "Dataset", "DatasetError", "DatasetSpec", "FolderDataset", "Sample", "data_root", "open_dataset"]
