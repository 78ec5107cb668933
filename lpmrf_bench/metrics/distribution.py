"""Distances between two sets of image features: Fréchet distance, kernel (KID) distance, improved precision/recall.

Pure functions over float arrays [N, D]; no files, no networks (clean-fid's layering). Everything is float64.

The Fréchet trace term tr(sqrt(S1 S2)) is computed from symmetric eigenproblems instead of `scipy.linalg.sqrtm`
of the non-symmetric product, so rank-deficient covariances (fewer images than feature dimensions, the normal
case below 2048 images) need no eps fallback: with S1 = X^T X (X the centred features / sqrt(n - 1)), the
non-zero eigenvalues of S1 S2 are those of the n x n matrix X S2 X^T. The same identity makes the bootstrap
cheap: one Gram matrix of the features, then an n x n eigenproblem per resample.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1, as clean-fid and pytorch-fid) of features [N, D]."""
    feats = _as_features(features)
    if feats.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 feature vectors, got {feats.shape[0]}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _as_features(features: np.ndarray) -> np.ndarray:
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {feats.shape}")
    return feats


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (round-off negatives clipped to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def _trace_sqrt_of_psd(matrix: np.ndarray) -> float:
    values = np.linalg.eigvalsh((matrix + matrix.T) / 2.0)
    return float(np.sqrt(np.clip(values, 0.0, None)).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr(sqrt(sigma1 @ sigma2)) for covariance matrices: tr sqrt(A sigma1 A) with A = sqrt(sigma2)."""
    root = _psd_sqrt(np.asarray(sigma2, dtype=np.float64))
    return _trace_sqrt_of_psd(root @ np.asarray(sigma1, dtype=np.float64) @ root)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrt(sigma1 sigma2)) of two Gaussians."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: means {mu1.shape} and {mu2.shape}, covariances {sigma1.shape} "
                         f"and {sigma2.shape} (features of different extractors?)")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))


def frechet_distance_bootstrap(features: np.ndarray, mu_ref: np.ndarray, sigma_ref: np.ndarray,
                               index: np.ndarray) -> np.ndarray:
    """The Fréchet distance of `features[row]` to a fixed reference, for every row of `index` [R, N].

    Equals `frechet_distance(*feature_statistics(features[row]), mu_ref, sigma_ref)` per row, computed from
    n x n Gram matrices when N < D (the usual case) and from D x D covariances otherwise.
    """
    feats = _as_features(features)
    n, d = feats.shape
    index = np.atleast_2d(index)
    if n >= d:
        root, trace_ref = _psd_sqrt(sigma_ref), float(np.trace(sigma_ref))
        values = []
        for row in index:
            mean, cov = feature_statistics(feats[row])
            diff = mean - mu_ref
            values.append(diff @ diff + np.trace(cov) + trace_ref - 2.0 * _trace_sqrt_of_psd(root @ cov @ root))
        return np.array(values)
    cross = feats @ sigma_ref @ feats.T  # F S_ref F^T
    sq_norms = (feats * feats).sum(axis=1)
    trace_ref = float(np.trace(sigma_ref))
    values = np.empty(len(index))
    for r, row in enumerate(index):
        m = len(row)
        mean = feats[row].mean(axis=0)
        diff = mean - mu_ref
        trace_own = (sq_norms[row].sum() - m * (mean @ mean)) / (m - 1)
        tr_sqrt = _trace_sqrt_of_psd(_centred(cross[np.ix_(row, row)]) / (m - 1))
        values[r] = diff @ diff + trace_own + trace_ref - 2.0 * tr_sqrt
    return values


def _centred(gram: np.ndarray) -> np.ndarray:
    """C G C with C = I - 11^T/m, without the two m x m x m products."""
    rows = gram.mean(axis=1, keepdims=True)
    return gram - rows - rows.T + gram.mean()


def _cubic_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kernel_distance(features1: np.ndarray, features2: np.ndarray, num_subsets: int = 100,
                    max_subset_size: int = 1000, seed: int = 0) -> float:
    """KID: the unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets of
    min(N1, N2, max_subset_size) vectors of each set.

    Draws exactly as clean-fid's `kernel_distance` (subset of set 2, then of set 1, per subset) from
    `np.random.RandomState(seed)` (clean-fid uses the global one), so equal seeds give equal values.
    """
    f1 = _as_features(features1)
    draws = kernel_draws(features2, f1.shape[0], num_subsets, max_subset_size, seed)
    return float(kernel_distance_bootstrap(f1, features2, np.arange(f1.shape[0])[None], draws)[0])


@dataclass(frozen=True)
class KernelDraws:
    """The random subsets of one KID computation, drawn as clean-fid draws them, and the reference's share of it.

    Per subset: `ref_subsets[s]` (reference rows), `positions[s]` (positions within the scored set) and
    `ref_within[s]` (off-diagonal kernel sum of the reference subset). They depend on the reference, the set
    size n and the seed only, so one set of draws serves every configuration and every bootstrap resample.
    """

    ref_subsets: np.ndarray  # [S, m]
    positions: np.ndarray  # [S, m]
    ref_within: np.ndarray  # [S]

    @property
    def m(self) -> int:
        return self.ref_subsets.shape[1]


def kernel_draws(reference: np.ndarray, n: int, num_subsets: int = 100, max_subset_size: int = 1000,
                 seed: int = 0) -> KernelDraws:
    ref = _as_features(reference)
    m = min(n, ref.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f"KID needs at least 2 feature vectors in each set, got {n} and {ref.shape[0]}")
    rng = np.random.RandomState(seed)
    subsets, positions = [], []
    for _ in range(num_subsets):  # clean-fid's order: the reference's subset, then the scored set's
        subsets.append(rng.choice(ref.shape[0], m, replace=False))
        positions.append(rng.choice(n, m, replace=False))
    within = []
    for subset in subsets:
        k = _cubic_kernel(ref[subset], ref[subset])
        within.append(k.sum() - np.trace(k))
    return KernelDraws(np.array(subsets), np.array(positions), np.array(within))


def kernel_distance_bootstrap(features: np.ndarray, reference: np.ndarray, index: np.ndarray,
                              draws: KernelDraws) -> np.ndarray:
    """KID of `features[row]` against `reference` for every row of `index` [R, N], with the same subset draws
    for every row; the row `arange(N)` gives `kernel_distance` with the same seed.

    Kernels are computed once and summed per subset. When a subset is the whole set (N <= 1000), the set's own
    term is the same for every subset and the cross term is a count-weighted sum of per-image row sums.
    """
    feats, ref = _as_features(features), _as_features(reference)
    index = np.atleast_2d(index)
    n, m, subsets = index.shape[1], draws.m, len(draws.ref_subsets)
    k_ff = _cubic_kernel(feats, feats)
    used = np.unique(draws.ref_subsets)
    k_fr = _cubic_kernel(feats, ref[used])
    local = np.searchsorted(used, draws.ref_subsets)  # [S, m] columns of k_fr
    ref_term = draws.ref_within.sum() / (m - 1)
    values = np.empty(len(index))
    if m == n:
        row_sums = np.stack([k_fr[:, cols].sum(axis=1) for cols in local], axis=1)  # [N, S]
        diag = np.diag(k_ff)
        for r, row in enumerate(index):
            counts = np.bincount(row, minlength=feats.shape[0]).astype(np.float64)
            own = counts @ k_ff @ counts - counts @ diag
            cross = (counts @ row_sums).sum()
            values[r] = (ref_term + subsets * own / (m - 1) - cross * 2.0 / m) / subsets / m
        return values
    for r, row in enumerate(index):
        total = ref_term
        for cols, pos in zip(local, draws.positions):
            ids = row[pos]
            kyy = k_ff[np.ix_(ids, ids)]
            total += (kyy.sum() - np.trace(kyy)) / (m - 1) - k_fr[np.ix_(ids, cols)].sum() * 2.0 / m
        values[r] = total / subsets / m
    return values


ROW_CHUNK = 1024  # rows of a distance matrix held at once: bounds memory for 70k reference vectors


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(sq, 0.0, None))


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance of each vector to its k-th nearest neighbour in the same set (the vector itself is the 0-th)."""
    feats = _as_features(features)
    return np.concatenate([np.partition(_pairwise_distances(feats[i:i + ROW_CHUNK], feats), k, axis=1)[:, k]
                           for i in range(0, len(feats), ROW_CHUNK)])


@dataclass(frozen=True)
class BallCover:
    """Which vectors lie in which k-NN balls: all that precision and recall (and their resamples) need."""

    fake_in_real: np.ndarray  # [N] bool: fake i inside the union of the real k-NN balls (precision's indicator)
    real_in_fake: np.ndarray  # [N, M] bool: real j inside fake i's k-NN ball (recall's)


def ball_cover(real: np.ndarray, real_radii: np.ndarray, fake: np.ndarray, k: int = 3) -> BallCover:
    real, fake = _as_features(real), _as_features(fake)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} vectors per set")
    fake_radii = knn_radii(fake, k)
    inside, covers = [], []
    for i in range(0, len(fake), ROW_CHUNK):
        dist = _pairwise_distances(fake[i:i + ROW_CHUNK], real)  # [fake chunk, real]
        inside.append((dist <= real_radii[None, :]).any(axis=1))
        covers.append(dist <= fake_radii[i:i + ROW_CHUNK, None])
    return BallCover(np.concatenate(inside), np.concatenate(covers))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): precision is the share of fake vectors inside
    the union of the real k-NN balls, recall the share of real vectors inside the fake k-NN balls."""
    cover = ball_cover(real, knn_radii(real, k), fake, k)
    return float(cover.fake_in_real.mean()), float(cover.real_in_fake.any(axis=0).mean())


def precision_recall_bootstrap(cover: BallCover, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of the fake rows `index` [R, N] with the balls of the full set: precision is exact
    (each fake's indicator does not depend on the others); recall keeps each fake's k-NN radius from the full
    set (a resample's duplicates would shrink it to zero)."""
    precision = cover.fake_in_real[index].mean(axis=1)
    recall = np.array([cover.real_in_fake[np.unique(row)].any(axis=0).mean() for row in index])
    return precision, recall
