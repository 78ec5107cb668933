"""Set-level metrics: one value per set of restored images, from their features against a named reference.

A `SetMetric` names its extractor and its distance; `score` gives the value, n and a 95% percentile bootstrap
interval from resampling the images (the reference stays fixed). `set_distance` is the small functional entry
point for callers outside a run (training validation): images or features in, one number out, no store.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lpmrf_bench.metrics.distribution import (ball_cover, frechet_distance_bootstrap, kernel_distance_bootstrap,
                                              kernel_draws, knn_radii, precision_recall_bootstrap)
from lpmrf_bench.metrics.extractors import EXTRACTORS, INCEPTION, INCEPTION_PYIQA, MOBILENET, VGG16, FeatureFn
from lpmrf_bench.metrics.references import Reference, cache_path, get_reference

BOOTSTRAP_RESAMPLES = 200
KID_SUBSETS, KID_SUBSET_SIZE, KID_SEED = 100, 1000, 0
PRC_NEIGHBOURS = 3  # torch-fidelity's prc_neighborhood


@dataclass(frozen=True)
class SetMetric:
    name: str
    spec: str
    extractor: str  # registered extractor name
    higher_is_better: bool
    value: Callable[[np.ndarray, Reference], float]
    resampled: Callable[[np.ndarray, Reference, np.ndarray], np.ndarray]  # values for rows of image indices
    description: str = ""
    min_images: int = 0  # fewer images are flagged in the summary (FID: below 2048 the covariance is singular)

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"


@dataclass(frozen=True)
class SetScore:
    value: float
    n: int
    ci_low: float
    ci_high: float


def _fd(feats: np.ndarray, ref: Reference) -> float:
    return float(frechet_distance_bootstrap(feats, *ref.statistics, np.arange(len(feats))[None])[0])


def _fd_resampled(feats: np.ndarray, ref: Reference, index: np.ndarray) -> np.ndarray:
    return frechet_distance_bootstrap(feats, *ref.statistics, index)


def _kd(feats: np.ndarray, ref: Reference) -> float:
    return float(_kd_resampled(feats, ref, np.arange(len(feats))[None])[0])


def _kd_resampled(feats: np.ndarray, ref: Reference, index: np.ndarray) -> np.ndarray:
    draws = ref.memo(("kid", len(feats)), lambda: kernel_draws(ref.features, len(feats), KID_SUBSETS,
                                                                 KID_SUBSET_SIZE, KID_SEED))
    return kernel_distance_bootstrap(feats, ref.features, index, draws)


def _prc_resampled(which: int) -> Callable[[np.ndarray, Reference, np.ndarray], np.ndarray]:
    """Precision (0) or recall (1) for rows of image indices; the reference's k-NN radii are computed once."""
    def resampled(feats: np.ndarray, ref: Reference, index: np.ndarray) -> np.ndarray:
        radii = ref.memo(("knn-radii", PRC_NEIGHBOURS), lambda: knn_radii(ref.features, PRC_NEIGHBOURS))
        return precision_recall_bootstrap(ball_cover(ref.features, radii, feats, PRC_NEIGHBOURS), index)[which]
    return resampled


def _prc_value(which: int) -> Callable[[np.ndarray, Reference], float]:
    resampled = _prc_resampled(which)
    return lambda feats, ref: float(resampled(feats, ref, np.arange(len(feats))[None])[0])


_MOBILENET, _INCEPTION, _PYIQA, _VGG16 = MOBILENET.spec, INCEPTION.spec, INCEPTION_PYIQA.spec, VGG16.spec
_PRC_SPEC = f"improved-knn{PRC_NEIGHBOURS}-bootstrap-fixed-radii"
_KID_SPEC = f"mmd2-cubic-unbiased-{KID_SUBSETS}x{KID_SUBSET_SIZE}-seed0"  # subsets of min(1000, N) images
SET_METRICS: dict[str, SetMetric] = {m.name: m for m in (
    SetMetric("fd_mobilenet", f"fd_mobilenet/{_MOBILENET}/frechet-cov-ddof1-f64/v1", "mobilenet", False, _fd,
              _fd_resampled, "Fréchet distance of MobileNetV2 features (the offline stand-in for FID)"),
    SetMetric("kd_mobilenet", f"kd_mobilenet/{_MOBILENET}/{_KID_SPEC}/v1",
              "mobilenet", False, _kd, _kd_resampled,
              "KID (unbiased MMD^2, cubic kernel) of MobileNetV2 features, subsets as clean-fid"),
    SetMetric("fid", f"fid/{_INCEPTION}/frechet-cov-ddof1-f64/v1", "inception", False, _fd, _fd_resampled,
              "FID, PMRF protocol: torch-fidelity's Inception file and TF1 bilinear resize to 299",
              min_images=INCEPTION.dim),
    SetMetric("kid", f"kid/{_INCEPTION}/{_KID_SPEC}/v1", "inception", False, _kd, _kd_resampled,
              "KID, PMRF protocol: torch-fidelity's Inception features, subsets of min(1000, N) as clean-fid"),
    SetMetric("fid_pyiqa", f"fid_pyiqa/{_PYIQA}/frechet-cov-ddof1-f64/v1", "inception-pyiqa", False, _fd,
              _fd_resampled, "FID as pyiqa: pytorch-fid's Inception file, clean-fid's resize; clean-fid's FFHQ stats",
              min_images=INCEPTION_PYIQA.dim),
    SetMetric("kid_pyiqa", f"kid_pyiqa/{_PYIQA}/{_KID_SPEC}/v1", "inception-pyiqa", False, _kd, _kd_resampled,
              "KID as pyiqa's features (clean-fid resize), subsets of min(1000, N) as clean-fid"),
    SetMetric("precision", f"precision/{_VGG16}/{_PRC_SPEC}/v1", "vgg16", True, _prc_value(0), _prc_resampled(0),
              "improved precision (k=3) on VGG-16 ReLU(fc2) features, torch-fidelity's default extractor for it"),
    SetMetric("recall", f"recall/{_VGG16}/{_PRC_SPEC}/v1", "vgg16", True, _prc_value(1), _prc_resampled(1),
              "improved recall (k=3) on VGG-16 ReLU(fc2) features, torch-fidelity's default extractor for it"),
)}


def score(metric: SetMetric, features: np.ndarray, reference: Reference, resamples: int = BOOTSTRAP_RESAMPLES,
          seed: int = 0) -> SetScore:
    """The metric of `features` [N, D] against `reference`, with a percentile bootstrap interval over the images."""
    feats = np.asarray(features, dtype=np.float64)
    n = feats.shape[0]
    value = metric.value(feats, reference)
    index = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    stats = metric.resampled(feats, reference, index)
    low, high = np.nanquantile(stats, [0.025, 0.975])
    return SetScore(value, n, float(low), float(high))


def paired_difference(metric: SetMetric, features_a: np.ndarray, features_b: np.ndarray, reference: Reference,
                      resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> SetScore:
    """metric(a) - metric(b) for two restorations of the same images (rows aligned), with a paired bootstrap
    interval: every resample draws the same image indices for both, so image-to-image variation cancels."""
    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a paired difference needs features of the same images, got {a.shape} and {b.shape}")
    n = a.shape[0]
    index = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    diffs = metric.resampled(a, reference, index) - metric.resampled(b, reference, index)
    low, high = np.nanquantile(diffs, [0.025, 0.975])
    return SetScore(metric.value(a, reference) - metric.value(b, reference), n, float(low), float(high))


def set_distance(images: torch.Tensor | np.ndarray, reference: str = "synthetic-faces:ref",
                 metric: str = "fd_mobilenet", device: torch.device | str = "cpu", weights_dir: str | None = None,
                 extract: FeatureFn | None = None) -> float:
    """One set-level value (e.g. `fd_mobilenet`) of images against a named reference; no run directory involved.

    `images` is uint8 [B,3,H,W] (features are extracted here; pass `extract` to reuse a built extractor), or a
    float array [B, D] of features already extracted. The embedded `synthetic-faces:ref` is computed and
    cached on first use; other references must have been made with `lpmrf-bench ref-stats`.
    """
    if metric not in SET_METRICS:
        raise KeyError(f"unknown set-level metric {metric!r}; known: {', '.join(SET_METRICS)}")
    spec = SET_METRICS[metric]
    extractor = EXTRACTORS.get(spec.extractor)
    is_images = isinstance(images, torch.Tensor) and images.dtype == torch.uint8
    if extract is None and (is_images or not cache_path(reference, extractor).is_file()):
        extract = extractor.build(torch.device(device), weights_dir)
    feats = extract(images).numpy() if is_images else np.asarray(images, dtype=np.float64)
    return spec.value(feats, get_reference(reference, extractor, extract))

