"""Bootstrap intervals against normal theory, and the paired bootstrap's advantage on paired data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lpmrf_bench import store
from lpmrf_bench.intervals import bootstrap, paired_difference


def test_mean_interval_matches_normal_theory():
    values = np.random.default_rng(0).normal(10.0, 2.0, size=2000)
    interval = bootstrap(values, resamples=2000, seed=1)
    half_width = 1.96 * values.std() / np.sqrt(values.size)
    assert interval.value == pytest.approx(values.mean())
    assert interval.high - interval.low == pytest.approx(2 * half_width, rel=0.1)
    assert interval.low < values.mean() < interval.high
    assert bootstrap(values, resamples=2000, seed=1) == interval


def test_paired_interval_is_narrower_than_independent_ones():
    rng = np.random.default_rng(0)
    per_image_difficulty = rng.normal(25, 3, size=300)
    a = per_image_difficulty + rng.normal(0.5, 0.2, size=300)
    b = per_image_difficulty + rng.normal(0.0, 0.2, size=300)
    paired = paired_difference(a, b)
    ia, ib = bootstrap(a), bootstrap(b)
    assert paired.low > 0  # the paired test sees the 0.5 dB gain ...
    assert ia.low < ib.high  # ... that two separate intervals cannot separate
    assert paired.value == pytest.approx(0.5, abs=0.05)


def test_mixed_specs_are_refused():
    frame = pd.DataFrame({"metric": ["ssim", "ssim"], "spec": ["ssim/rgb/pmrf-v1", "ssim/yiq/pyiqa-v1"],
                          "method": ["a", "b"], "weights": "-", "dataset": "d", "split": "s", "config_id": ["1", "2"],
                          "image_id": ["x", "x"], "value": [0.5, 0.6]})
    with pytest.raises(ValueError, match="ssim: ssim/rgb/pmrf-v1, ssim/yiq/pyiqa-v1"):
        store.aggregate(frame)
