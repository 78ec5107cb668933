"""Percentile bootstrap intervals for set-level values, and the paired bootstrap for differences.

Seeded, so a report is repeatable. Pairing matters: two restorers scored on the same images differ far
less noisily than their two independent intervals suggest.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float
    n: int


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def bootstrap(values: np.ndarray, statistic: Statistic = _finite_mean, resamples: int = 1000,
              level: float = 0.95, seed: int = 0) -> Interval:
    """The statistic of `values` with a percentile interval from resampling images with replacement."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(resamples, n))
    stats = np.array([statistic(values[row]) for row in index])
    alpha = (1.0 - level) / 2.0
    # Interpolating between a finite and an infinite statistic gives NaN; with infinities (PSNR of identical
    # images) the bounds are order statistics instead.
    method = "linear" if not np.isinf(stats).any() else "inverted_cdf"
    defined = ~np.isnan(stats)
    low, high = np.quantile(stats[defined], [alpha, 1.0 - alpha], method=method) if defined.any() else (np.nan, np.nan)
    return Interval(statistic(values), float(low), float(high), n)


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = 1000, level: float = 0.95,
                      seed: int = 0) -> Interval:
    """mean(a - b) over images scored by both, with a paired bootstrap interval (same images resampled)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired difference needs values on the same images, got {a.shape} and {b.shape}")
    return bootstrap(a - b, _finite_mean, resamples, level, seed)


def paired_statistic_difference(a: np.ndarray, b: np.ndarray, statistic: Statistic = _finite_mean,
                                resamples: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """statistic(a) - statistic(b) with the same images resampled for both (a set-level reduction, jointly).

    Unlike `paired_difference` (the mean of per-image differences), this keeps a metric's own reduction,
    e.g. Deg's exclusion of pairs under 1 degree, which is not a mean of differences.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired difference needs values on the same images, got {a.shape} and {b.shape}")
    if a.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, a.size, size=(resamples, a.size))
    stats = np.array([statistic(a[row]) - statistic(b[row]) for row in index])
    alpha = (1.0 - level) / 2.0
    low, high = np.nanquantile(stats, [alpha, 1.0 - alpha]) if np.isfinite(stats).any() else (np.nan, np.nan)
    return Interval(statistic(a) - statistic(b), float(low), float(high), int(a.size))
