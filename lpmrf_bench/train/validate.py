"""Validation during training: the EMA weights, exported and loaded by the benchmark's own restorer, scored on
a fixed validation subset with fixed seeds; one `convergence.parquet` row per metric and a sample grid PNG.

Each image's draws use `image_seed(config seed, dataset name, image_id, 0)`, as `lpmrf-bench run --seed SEED`
does, and outputs are rounded to 8 bit before scoring, as the engine does: the exported folder run through
`lpmrf-bench run --weights METHOD=DIR --seed SEED` gives the values validation logged for the same images.

The metric seam is `VALIDATION_METRICS` (name -> builder(device, validation set name)). Per-image metrics of
the `pmrf` protocol are adapted with `per_image_metric` (their set value is the protocol's aggregate); the
set-level metrics (`fid`, `fd_mobilenet`, ...: `set_level_metric`) score all outputs at once against the
validation set's default reference (`synthetic-faces:ref` at the set's size), as `lpmrf-bench run` does.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lpmrf_bench.data import open_dataset
from lpmrf_bench.data.base import Dataset
from lpmrf_bench.data.loading import to_tensor
from lpmrf_bench.engine import quantize
from lpmrf_bench.imageio import write_png
from lpmrf_bench.metrics import METRICS, MetricBatch, SetValue, protocol
from lpmrf_bench.metrics.base import unavailable_reason
from lpmrf_bench.metrics.extractors import EXTRACTORS
from lpmrf_bench.metrics.references import ReferenceMissingError, default_reference, get_reference
from lpmrf_bench.metrics.setlevel import SET_METRICS
from lpmrf_bench.restorers import RESTORERS, RestoreBatch, image_seed
from lpmrf_bench.train.config import ConfigError
from lpmrf_bench.weights import WeightsError

PROTOCOL = "pmrf"


@dataclass(frozen=True)
class ValidationMetric:
    """A metric of the whole validation set: `score(batches)` sees every batch of 8-bit outputs."""

    name: str
    spec: str
    score: Callable[[list[MetricBatch]], SetValue]


def per_image_metric(name: str, device: torch.device) -> ValidationMetric:
    """A per-image metric of the `pmrf` protocol, reduced by its own aggregate (the mean for PSNR, LPIPS)."""
    spec = METRICS.get(protocol(PROTOCOL)[name])
    reason = unavailable_reason(spec)
    if reason:
        raise WeightsError(reason)
    fn = spec.build(device, None)

    def score(batches: list[MetricBatch]) -> SetValue:
        values = np.concatenate([fn(b).detach().to("cpu", torch.float64).numpy() for b in batches])
        return spec.aggregate(values)

    return ValidationMetric(spec.name, spec.spec, score)


def set_level_metric(name: str, device: torch.device, dataset_name: str) -> ValidationMetric:
    """A set-level metric (`fid`, `fd_mobilenet`, `kd_mobilenet`, ...) of all validation outputs against the validation set's
    default reference; the reference is loaded (or, for synthetic faces, computed and cached) here, once."""
    metric = SET_METRICS[name]
    extractor = EXTRACTORS.get(metric.extractor)
    extract = extractor.build(device, None)
    reference_name = default_reference(dataset_name)
    reference = get_reference(reference_name, extractor, extract)

    def score(batches: list[MetricBatch]) -> SetValue:
        features = torch.cat([extract(b.out) for b in batches]).numpy()
        return SetValue(metric.value(features.astype(np.float64), reference), len(features))

    return ValidationMetric(metric.name, f"{metric.spec}/ref={reference_name}", score)


VALIDATION_METRICS: dict[str, Callable[[torch.device, str], ValidationMetric]] = {
    "psnr": lambda device, dataset: per_image_metric("psnr", device),
    "lpips": lambda device, dataset: per_image_metric("lpips", device),
    **{name: functools.partial(set_level_metric, name) for name in SET_METRICS},  # fid, fd_mobilenet, kd_*, ...
}


def build_metrics(names: tuple[str, ...], device: torch.device, dataset_name: str,
                  strict: bool) -> tuple[list[ValidationMetric], list[str]]:
    """The metrics that can run here and notes on those that cannot (an error instead when `strict`)."""
    built, notes = [], []
    for name in names:
        if name not in VALIDATION_METRICS:
            raise ConfigError(f"val_metrics: unknown metric {name!r}; known: {', '.join(VALIDATION_METRICS)}")
        try:
            built.append(VALIDATION_METRICS[name](device, dataset_name))
        except (WeightsError, ImportError, ReferenceMissingError) as exc:
            if strict:
                raise
            notes.append(f"validation skips {name}: {str(exc).splitlines()[0]}")
    return built, notes


@dataclass
class Validator:
    """The fixed validation subset and metrics of a run."""

    dataset: Dataset
    image_ids: list[str]
    metrics: list[ValidationMetric]
    seed: int
    batch_size: int
    device: torch.device

    @classmethod
    def open(cls, spec: str, count: int, metrics: list[ValidationMetric], seed: int, batch_size: int,
             device: torch.device, data_root: str | None = None) -> Validator:
        dataset = open_dataset(spec, data_root)
        if not dataset.paired:
            raise ValueError(f"val_data {spec!r} has no ground truth; validation needs a paired set")
        return cls(dataset, list(dataset.image_ids())[:count], metrics, seed, batch_size, device)

    def run(self, restorer: str, weights: Path, knobs: dict, grid_path: Path | None) -> dict[str, tuple[str, SetValue]]:
        """Load `weights` through the restorer, restore the subset, score it: metric -> (spec, value)."""
        loaded = RESTORERS.get(restorer).load(str(weights), self.device)
        batches, grid = [], []
        for start in range(0, len(self.image_ids), self.batch_size):
            samples = [self.dataset.load(i) for i in self.image_ids[start:start + self.batch_size]]
            lq8, gt8 = to_tensor([s.lq for s in samples], self.device), to_tensor([s.gt for s in samples], self.device)
            ids = [s.image_id for s in samples]
            batch = RestoreBatch(lq=lq8.float() / 255.0, image_ids=ids, gt=gt8.float() / 255.0,
                                 seeds=[image_seed(self.seed, self.dataset.name, i, 0) for i in ids])
            with torch.inference_mode():
                out8 = quantize(loaded(batch, knobs))
            batches.append(MetricBatch(out=out8, gt=gt8, lq=lq8))
            grid.extend(zip(lq8, out8, gt8))
        if grid_path is not None:
            write_png(grid_path, sample_grid(grid[:8]))
        return {m.name: (m.spec, m.score(batches)) for m in self.metrics}


def sample_grid(rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> np.ndarray:
    """uint8 [H, W, 3]: one row per image, columns LQ | restored | GT (LQ resized to the GT's size)."""
    lines = []
    for lq, out, gt in rows:
        if lq.shape[-2:] != gt.shape[-2:]:
            lq = torch.nn.functional.interpolate(lq[None].float(), size=gt.shape[-2:], mode="nearest")[0].to(torch.uint8)
        lines.append(torch.cat([lq, out, gt], dim=2))
    return torch.cat(lines, dim=1).permute(1, 2, 0).cpu().numpy()
