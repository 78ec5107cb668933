"""Set-level distances against independent references: scipy's sqrtm in float64, clean-fid's kernel_distance,
and an explicit loop for improved precision/recall."""
import numpy as np
import pytest
from cleanfid.fid import kernel_distance as cleanfid_kernel_distance
from scipy import linalg

from lpmrf_bench.metrics.distribution import (feature_statistics, frechet_distance, frechet_distance_bootstrap,
                                              kernel_distance, kernel_distance_bootstrap, kernel_draws,
                                              precision_recall)


def scipy_fd(f1, f2):
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


@pytest.mark.parametrize("n1,n2,d", [(200, 300, 16), (40, 300, 16), (300, 200, 24)])
def test_frechet_matches_scipy_sqrtm(n1, n2, d):
    rng = np.random.default_rng(n1 + d)
    mix = rng.standard_normal((d, d))
    f1 = rng.standard_normal((n1, d)) @ mix
    f2 = rng.standard_normal((n2, d)) @ mix * 1.3 + 0.5
    ours = frechet_distance(*feature_statistics(f1), *feature_statistics(f2))
    assert ours == pytest.approx(scipy_fd(f1, f2), rel=1e-6)


def test_frechet_rank_deficient_both():
    rng = np.random.default_rng(3)
    basis = rng.standard_normal((5, 12))  # features live on a 5-d subspace: both covariances have rank <= 5
    f1 = rng.standard_normal((30, 5)) @ basis
    f2 = rng.standard_normal((40, 5)) @ basis * 0.7 + 0.2
    ours = frechet_distance(*feature_statistics(f1), *feature_statistics(f2))
    assert ours == pytest.approx(scipy_fd(f1, f2), rel=1e-6)


def test_frechet_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(0).standard_normal((50, 8))
    assert abs(frechet_distance(*feature_statistics(f), *feature_statistics(f))) < 1e-9


@pytest.mark.parametrize("n,d", [(30, 40), (60, 10)])
def test_frechet_bootstrap_rows_equal_direct_computation(n, d):
    rng = np.random.default_rng(n)
    feats = rng.standard_normal((n, d)) + 0.3
    ref = rng.standard_normal((80, d))
    mu, sigma = feature_statistics(ref)
    index = rng.integers(0, n, size=(4, n))
    got = frechet_distance_bootstrap(feats, mu, sigma, index)
    want = [scipy_fd(feats[row], ref) for row in index]
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("n1,n2,max_subset", [(60, 80, 1000), (90, 70, 50)])
def test_kernel_distance_equals_cleanfid(n1, n2, max_subset):
    rng = np.random.default_rng(1)
    f1 = rng.standard_normal((n1, 32))
    f2 = rng.standard_normal((n2, 32)) + 0.2
    np.random.seed(7)
    want = cleanfid_kernel_distance(f1, f2, num_subsets=20, max_subset_size=max_subset)
    got = kernel_distance(f1, f2, num_subsets=20, max_subset_size=max_subset, seed=7)
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("max_subset", [1000, 20])  # subsets of the whole set, and of 20 of its 30 images
def test_kernel_bootstrap_rows_equal_the_mmd_written_out(max_subset):
    rng = np.random.default_rng(2)
    feats, ref = rng.standard_normal((30, 16)), rng.standard_normal((50, 16)) + 0.3
    rows = rng.integers(0, 30, size=(2, 30))
    got = kernel_distance_bootstrap(feats, ref, rows, kernel_draws(ref, 30, 4, max_subset, seed=4))
    m = min(30, max_subset)
    k = lambda a, b: (a @ b / 16 + 1) ** 3  # noqa: E731
    for row, value in zip(rows, got):
        draws = np.random.RandomState(4)
        total = 0.0
        for _ in range(4):  # the MMD^2 estimator written out, one pair of subsets at a time
            x = ref[draws.choice(50, m, replace=False)]
            y = feats[row[draws.choice(30, m, replace=False)]]
            xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
            yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
            xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
            total += (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)
        assert value == pytest.approx(total / 4, rel=1e-9)


def test_precision_recall_against_explicit_loop():
    rng = np.random.default_rng(5)
    real = rng.standard_normal((25, 4))
    fake = rng.standard_normal((20, 4)) + 1.0
    k = 3

    def radius(points, i):
        return sorted(np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i)[k - 1]

    p = np.mean([any(np.linalg.norm(f - real[j]) <= radius(real, j) for j in range(len(real))) for f in fake])
    r = np.mean([any(np.linalg.norm(x - fake[j]) <= radius(fake, j) for j in range(len(fake))) for x in real])
    got = precision_recall(real, fake, k=k)
    assert got == pytest.approx((p, r))
    assert 0 < got[0] < 1 and 0 < got[1] < 1
