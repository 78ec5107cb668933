"""clean-fid's published FFHQ statistics as the `ffhq-512` reference of `inception-pyiqa`, through the resolver:
FID from the published mean/covariance, KID from the published features; a missing file is named."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from cleanfid.fid import kernel_distance as cleanfid_kernel_distance
from scipy import linalg

from lpmrf_bench import weights as W
from lpmrf_bench.metrics.extractors import INCEPTION_PYIQA
from lpmrf_bench.metrics.references import ReferenceMissingError, get_reference
from lpmrf_bench.metrics.setlevel import SET_METRICS, score

SMALL = dataclasses.replace(INCEPTION_PYIQA, dim=6)  # same name (the lookup key), small features for the test
RNG = np.random.default_rng(0)
STATS_FEATS, KID_FEATS = RNG.standard_normal((80, 6)), RNG.standard_normal((50, 6)) + 0.5  # deliberately different
SET = RNG.standard_normal((30, 6)) + 0.2


def write_published(cache) -> tuple[np.ndarray, np.ndarray]:
    (cache / "references").mkdir(parents=True, exist_ok=True)
    mu, sigma = STATS_FEATS.mean(0), np.cov(STATS_FEATS, rowvar=False)
    np.savez(cache / "references" / "ffhq_clean_trainval70k_512.npz", mu=mu, sigma=sigma)
    np.savez(cache / "references" / "ffhq_clean_trainval70k_512_kid.npz", feats=KID_FEATS.astype(np.float32))
    return mu, sigma


def test_fid_uses_the_published_mean_and_covariance_kid_the_published_features(monkeypatch):
    mu, sigma = write_published(W.cache_dir())
    ref = get_reference("ffhq-512", SMALL, None)
    assert "clean-fid/stats/ffhq_clean_trainval70k_512.npz" in ref.source and ref.n == 50
    s1 = np.cov(SET, rowvar=False)
    d = SET.mean(0) - mu
    want_fd = d @ d + np.trace(s1) + np.trace(sigma) - 2 * np.trace(linalg.sqrtm(s1 @ sigma)).real
    assert score(SET_METRICS["fid_pyiqa"], SET, ref, resamples=3).value == pytest.approx(want_fd, rel=1e-6)
    np.random.seed(0)
    want_kd = cleanfid_kernel_distance(SET, KID_FEATS.astype(np.float32).astype(np.float64), num_subsets=100,
                                       max_subset_size=1000)
    assert score(SET_METRICS["kid_pyiqa"], SET, ref, resamples=3).value == pytest.approx(want_kd, rel=1e-10)


def test_missing_published_file_is_named():
    with pytest.raises(ReferenceMissingError, match="ffhq_clean_trainval70k_512.npz"):
        get_reference("ffhq-512", SMALL, None)


def test_wrong_dimension_is_one_clear_error():
    write_published(W.cache_dir())
    with pytest.raises(ReferenceMissingError, match="not 2048-d statistics"):
        get_reference("ffhq-512", INCEPTION_PYIQA, None)
