"""Set-level scoring and the paired FD difference, against scipy's sqrtm on the same resampled images."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from lpmrf_bench import store
from lpmrf_bench.metrics import extractors, references
from lpmrf_bench.metrics.references import Reference
from lpmrf_bench.metrics.setlevel import SET_METRICS, paired_difference, score
from lpmrf_bench.set_scoring import compare_sets

FD = SET_METRICS["fd_mobilenet"]


def scipy_fd(f1: np.ndarray, f2: np.ndarray) -> float:
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    d = f1.mean(0) - f2.mean(0)
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real)


def features(seed: int, n: int, shift: float = 0.0, d: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) + shift


REF = Reference("r", "test", features(0, 60), "hash", "random")


def test_score_value_and_percentile_interval_equal_scipy_on_the_resampled_images():
    feats = features(1, 20, 0.4)
    got = score(FD, feats, REF, resamples=7, seed=3)
    index = np.random.default_rng(3).integers(0, 20, size=(7, 20))
    resampled = [scipy_fd(feats[row], REF.features) for row in index]
    assert got.value == pytest.approx(scipy_fd(feats, REF.features), rel=1e-6)
    assert (got.ci_low, got.ci_high) == pytest.approx(tuple(np.quantile(resampled, [0.025, 0.975])), rel=1e-6)
    assert got.n == 20


def test_paired_difference_resamples_the_same_images_for_both():
    a, b = features(2, 25, 0.5), features(3, 25, 0.2)
    got = paired_difference(FD, a, b, REF, resamples=6, seed=4)
    index = np.random.default_rng(4).integers(0, 25, size=(6, 25))
    diffs = [scipy_fd(a[row], REF.features) - scipy_fd(b[row], REF.features) for row in index]
    assert got.value == pytest.approx(scipy_fd(a, REF.features) - scipy_fd(b, REF.features), rel=1e-6)
    assert (got.ci_low, got.ci_high) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])), rel=1e-6)
    same = paired_difference(FD, a, a, REF, resamples=6)
    assert same.value == 0 and same.ci_low == 0 and same.ci_high == 0


def test_compare_sets_aligns_images_of_two_configurations(tmp_path, monkeypatch):
    monkeypatch.setenv(references.CACHE_ENV, str(tmp_path / "refs"))
    ref = Reference("toy-ref", extractors.MOBILENET.spec, features(5, 40), "h", "random")
    references.save(ref, extractors.MOBILENET)
    a, b = features(6, 8, 0.3), features(7, 8, 0.0)
    rows = []
    for config, feats in (("A", a), ("B", b)):
        for i, f in enumerate(feats):
            rows.append({"run_id": "x", "config_id": config, "method": config, "weights": "-", "sample": 0,
                         "dataset": "toy", "split": "all", "image_id": f"img{i}", "extractor": extractors.MOBILENET.spec,
                         "feature": f.astype(np.float32)})
    store.append(tmp_path / "run", "features", rows[::-1])  # stored order must not matter
    got, used = compare_sets(tmp_path / "run", "A", "B", FD, "toy", "all", "toy-ref", extractors=lambda name: None)
    assert used.name == "toy-ref" and used.content_hash == "h"
    a32, b32 = a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
    ref_feats = ref.features.astype(np.float32).astype(np.float64)
    assert got.value == pytest.approx(scipy_fd(a32, ref_feats) - scipy_fd(b32, ref_feats), rel=1e-6)
    assert got.n == 8 and got.ci_low <= got.ci_high
