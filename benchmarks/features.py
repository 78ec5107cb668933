"""Feature extraction images/s of every registered extractor, and the time of the set-level values.

    python benchmarks/features.py [--quick] [--device cuda] [--sizes 512] [--images 64] [--batch-size 16]
                                  [--n 3000] [--references 3000,70000] [--prc-reference-cap 20000]

Extractors run with the published weights when they are in the cache; otherwise with seeded random weights
saved in the published key layout to a temporary folder and loaded through the same resolver and loader
(speed does not depend on the values; each line says which). Downloads are never attempted.

The set-level part times each distance as a run computes it (the value plus its 200-resample bootstrap) on
seeded random features of the metric's extractor dimension (2048 for fid/kid, 4096 for precision/recall,
1280 for the offline pair): N scored images against references of each size. The work that is done once per
reference (mean and covariance; the k-NN radii of precision/recall) is timed on its own line. Precision/recall
needs all M x M reference distances (its cost grows with M^2), so above --prc-reference-cap (default 20000) it is
timed at the cap instead, and the line says so; pass --prc-reference-cap 70000 to time the full size.
--quick: 64 px, 4 images, N=300 against 300 and 3000, a smoke check of every line (about 2.5 minutes on this
project's shared 2-core CPU under load).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torchvision

from lpmrf_bench import weights as weights_module
from lpmrf_bench.metrics.distribution import knn_radii
from lpmrf_bench.metrics.extractors import EXTRACTORS, FeatureExtractor, FeatureFn
from lpmrf_bench.metrics.inception import FIDInceptionV3
from lpmrf_bench.metrics.references import Reference
from lpmrf_bench.metrics.setlevel import PRC_NEIGHBOURS, SET_METRICS, score
from lpmrf_bench.weights import OFFLINE_ENV, WeightsMissingError

RANDOM_STATES: dict[str, Callable[[], dict[str, torch.Tensor]]] = {  # weight file -> its published key layout
    "metrics/mobilenet_v2-b0353104.pth": lambda: torchvision.models.mobilenet_v2(weights=None).state_dict(),
    "metrics/vgg16-397923af.pth": lambda: torchvision.models.vgg16(weights=None).state_dict(),
    "metrics/weights-inception-2015-12-05-6726825d.pth": lambda: FIDInceptionV3().state_dict(),
    "metrics/pt_inception-2015-12-05-6726825d.pth": lambda: FIDInceptionV3().state_dict(),
}
TIMED_METRICS = ("fid", "kid", "precision", "recall", "fd_mobilenet", "kd_mobilenet")


def build(extractor: FeatureExtractor, device: torch.device, scratch: Path) -> tuple[FeatureFn, str]:
    """The extractor with the cached published weights, else with random weights in the published layout."""
    try:
        return extractor.build(device, None), "published"
    except WeightsMissingError:
        pass
    for wf in extractor.weights:
        torch.manual_seed(0)
        (scratch / wf.path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(RANDOM_STATES[wf.path](), scratch / wf.path)
    # random stand-ins do not have the published sha256: the hash check is off for this build only
    with mock.patch.object(weights_module, "expected_hash", return_value=None):
        return extractor.build(device, str(scratch)), "RANDOM (published file not cached)"


def extraction_speed(extract: FeatureFn, device: torch.device, size: int, images: int, batch: int) -> float:
    """Images/s of `extract` on seeded random uint8 batches, after one warm-up batch."""
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    extract(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, done = time.perf_counter(), 0
    while done < images:
        extract(x)
        done += batch
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return done / (time.perf_counter() - start)


def random_features(n: int, dim: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Correlated Gaussian features (a fixed random mixing), so covariances are not the identity."""
    mix = np.random.default_rng(12345).standard_normal((dim, dim)) / dim**0.5
    return np.random.default_rng(seed).standard_normal((n, dim)) @ mix + shift


def set_level_lines(n: int, reference: int, prc_cap: int) -> list[str]:
    lines: list[str] = []
    refs: dict[tuple[int, int], Reference] = {}  # (dim, size) -> reference, so its once-only work is timed once
    for name in TIMED_METRICS:
        metric = SET_METRICS[name]
        dim = EXTRACTORS.get(metric.extractor).dim
        size = reference
        if name in ("precision", "recall") and reference > prc_cap:
            size = prc_cap
            lines.append(f"{name}: timed at M={size}, not M={reference} (over --prc-reference-cap: the reference's k-NN "
                         f"radii need all M^2 distances in {dim} dimensions, M^2 x D = {reference**2 * dim:.2g} "
                         f"multiply-adds at M={reference})")
        ref = refs.setdefault((dim, size), Reference("bench", f"random-{dim}", random_features(size, dim, 1), "-",
                                                     "seeded random"))
        if name.startswith(("fid", "fd")) and "statistics" not in ref.__dict__:
            start = time.perf_counter()
            ref.statistics  # noqa: B018  (once per reference, shared by every configuration)
            lines.append(f"reference mean and covariance, M={size}, D={dim}: {time.perf_counter() - start:.2f} s")
        if name in ("precision", "recall") and ("knn-radii", PRC_NEIGHBOURS) not in ref.__dict__.get("_memos", {}):
            start = time.perf_counter()
            ref.memo(("knn-radii", PRC_NEIGHBOURS), lambda: knn_radii(ref.features, PRC_NEIGHBOURS))
            lines.append(f"reference k-NN radii (k={PRC_NEIGHBOURS}), M={size}, D={dim}: "
                         f"{time.perf_counter() - start:.2f} s")
        feats = random_features(n, dim, 2, shift=0.05)
        start = time.perf_counter()
        result = score(metric, feats, ref)
        lines.append(f"{name} (value + bootstrap), N={n} vs M={size}, D={dim}: {time.perf_counter() - start:.2f} s "
                     f"(value {result.value:.4g})")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke check of every line")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="512", help="comma-separated image sizes for the extractors")
    ap.add_argument("--images", type=int, default=64, help="images timed per extractor and size")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--n", type=int, default=3000, help="images in the scored set")
    ap.add_argument("--references", default="3000,70000", help="comma-separated reference sizes")
    ap.add_argument("--prc-reference-cap", type=int, default=20000,
                    help="largest reference precision/recall is timed at (larger ones are timed at this size)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.images, args.batch_size, args.n, args.references = "64", 4, 2, 300, "300,3000"
    os.environ[OFFLINE_ENV] = "1"
    device = torch.device(args.device)
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as scratch:
        for name in EXTRACTORS.names():
            extract, source = build(EXTRACTORS.get(name), device, Path(scratch))
            for size in (int(s) for s in args.sizes.split(",")):
                speed = extraction_speed(extract, device, size, args.images, args.batch_size)
                print(f"{name} at {size} px: {speed:.2f} images/s (batch {args.batch_size}, weights {source})")
            del extract
    for reference in (int(m) for m in args.references.split(",")):
        for line in set_level_lines(args.n, reference, args.prc_reference_cap):
            print(line, flush=True)


if __name__ == "__main__":
    main()
