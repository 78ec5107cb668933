"""The metric interface: a pure per-image function plus the metadata that says how it was computed.

The engine owns batching, devices and storage; a metric owns only its mathematics. Every metric sees
8-bit images (the published protocols score saved PNGs): `MetricBatch.out` and `.gt` are uint8 tensors
[B,3,H,W] on the run's device. The function returns one float64 value per image (NaN where undefined).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from lpmrf_bench.weights import WeightFile

MetricKind = Literal["full-reference", "no-reference", "reference-restoration"]


@dataclass
class MetricBatch:
    out: torch.Tensor  # uint8 [B,3,H,W]: the restored images, rounded to 8 bit
    gt: torch.Tensor | None = None  # uint8 [B,3,H,W] ground truth, None for LQ-only sets
    lq: torch.Tensor | None = None  # uint8 [B,3,h,w] the degraded input
    reference: torch.Tensor | None = None  # uint8 [B,3,H,W] a reference restoration (IndRMSE)


MetricFn = Callable[[MetricBatch], torch.Tensor]


@dataclass(frozen=True)
class SetValue:
    value: float
    n: int  # number of images that entered the value


def mean_of_finite(values: np.ndarray) -> SetValue:
    """The default set-level reduction: the mean over images with a defined value."""
    finite = values[np.isfinite(values)]
    return SetValue(float(finite.mean()) if finite.size else float("nan"), int(finite.size))


def mean_with_infinities(values: np.ndarray) -> SetValue:
    """The mean over images with a value, infinities included: the PMRF protocol's PSNR (`np.mean` of per-image
    values), where an output identical to its ground truth has PSNR +inf and so makes the set value +inf."""
    defined = values[~np.isnan(values)]
    return SetValue(float(defined.mean()) if defined.size else float("nan"), int(defined.size))


@dataclass(frozen=True)
class MetricSpec:
    """One metric under one protocol.

    `name` is the stored column value (`psnr`), `spec` the protocol-pinned convention string
    (`psnr/rgb/pmrf-v1`); values with different specs are never compared. `build(device, weights_dir)`
    loads any network once and returns the per-image function. `requires` lists optional Python packages
    (import names) the metric needs; `aggregate` turns per-image values into the set-level value.
    """

    name: str
    spec: str
    kind: MetricKind
    higher_is_better: bool
    build: Callable[[torch.device, str | None], MetricFn]
    description: str = ""
    weights: tuple[WeightFile, ...] = ()
    requires: tuple[str, ...] = ()
    install_hint: str = ""  # how to get the `requires` packages
    min_size: int | None = None  # smallest image side the metric is defined for (smaller: NaN)
    licence: str = ""
    aggregate: Callable[[np.ndarray], SetValue] = field(default=mean_of_finite)

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"


def stateless(fn: Callable[[MetricBatch], torch.Tensor]) -> Callable[[torch.device, str | None], MetricFn]:
    """Adapt a pure function that needs no weights into a `MetricSpec.build`."""

    def build(device: torch.device, weights_dir: str | None) -> MetricFn:
        return fn

    return build


def unavailable_reason(spec: MetricSpec) -> str | None:
    """Why `spec` cannot run here (a missing optional package, with the install hint), or None."""
    missing = [name for name in spec.requires if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    hint = f": {spec.install_hint}" if spec.install_hint else ""
    return f"needs the Python package(s) {', '.join(missing)}{hint}"
