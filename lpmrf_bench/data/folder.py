"""Datasets read from folders: LQ-only, or paired LQ/GT matched by image_id (the layout `degrade` writes)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lpmrf_bench.data.base import DatasetError, Sample
from lpmrf_bench.imageio import list_images, read_image


class FolderDataset:
    """Images under `lq_dir` (and `gt_dir` when paired), in sorted image_id order.

    Names that appear on one side only are not silently dropped: they are listed in `mismatches`
    (image_id -> reason) so the run can report them; the matched images form the set.
    """

    def __init__(self, lq_dir: str | os.PathLike, gt_dir: str | os.PathLike | None = None, *, name: str | None = None,
                 split: str = "all", expected_count: int | None = None, resolution: int | None = None,
                 params: dict[str, dict[str, Any]] | None = None):
        self.lq_dir = Path(lq_dir)
        self.gt_dir = Path(gt_dir) if gt_dir is not None else None
        for folder in (self.lq_dir, self.gt_dir):
            if folder is not None and not folder.is_dir():
                raise DatasetError(f"image folder {folder} does not exist")
        self.name = name or str(self.lq_dir.resolve())
        self.split = split
        self.paired = self.gt_dir is not None
        self.expected_count = expected_count
        self.resolution = resolution
        self.params = params or {}
        self._lq = list_images(self.lq_dir)
        self._gt = list_images(self.gt_dir) if self.gt_dir is not None else {}
        if not self._lq:
            raise DatasetError(f"no images (png/jpg/bmp/webp/tif) found in {self.lq_dir}")
        self.mismatches: dict[str, str] = {}
        if self.paired:
            for image_id in sorted(set(self._lq) - set(self._gt)):
                self.mismatches[image_id] = f"LQ {self._lq[image_id].name} has no ground truth of that name in {self.gt_dir}"
            for image_id in sorted(set(self._gt) - set(self._lq)):
                self.mismatches[image_id] = f"ground truth {self._gt[image_id].name} has no LQ of that name in {self.lq_dir}"
            self._ids = sorted(set(self._lq) & set(self._gt))
        else:
            self._ids = sorted(self._lq)

    def image_ids(self) -> Sequence[str]:
        return self._ids

    def paths(self, image_id: str) -> tuple[Path, Path | None]:
        return self._lq[image_id], self._gt.get(image_id)

    def load(self, image_id: str) -> Sample:
        lq_path, gt_path = self.paths(image_id)
        lq, conversions = read_image(lq_path)
        conversions = [f"lq: {c}" for c in conversions]
        gt: np.ndarray | None = None
        if gt_path is not None:
            gt, gt_conv = read_image(gt_path)
            conversions += [f"gt: {c}" for c in gt_conv]
        return Sample(image_id=image_id, lq=lq, gt=gt, conversions=conversions, params=self.params.get(image_id, {}))


def _degradation_params(root: Path) -> dict[str, dict[str, Any]]:
    """Per-image parameters that `lpmrf-bench degrade` recorded in `params.parquet`, if it wrote this folder."""
    path = root / "params.parquet"
    if not path.exists():
        return {}
    frame = pd.read_parquet(path)
    return {row.pop("image_id"): row for row in frame.to_dict("records")}


def open_folder(path: str | os.PathLike) -> FolderDataset:
    """A directory spec: paired when it holds `lq/` and `gt/`, LQ-only otherwise."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")
    if (root / "lq").is_dir() and (root / "gt").is_dir():
        return FolderDataset(root / "lq", root / "gt", name=str(root.resolve()), params=_degradation_params(root))
    return FolderDataset(root, name=str(root.resolve()))
