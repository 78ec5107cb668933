"""Feature extraction images/s per extractor, and the time of the set-level values from stored features.

    python benchmarks/features.py [--device cuda] [--sizes 64,512] [--images 64] [--n 3000] [--reference 70000]

The extractor runs with the cached published weights when present, else with torchvision's random
initialisation (speed does not depend on the values; the output says which). The set-level part times
fd_mobilenet and kd_mobilenet (value plus the bootstrap interval, as a run computes them) on seeded random
1280-d features: N images against a reference of the given size, including the reference's statistics.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lpmrf_bench.metrics.extractors import EXTRACTORS, MOBILENET_V2_WEIGHTS, mobilenet_features
from lpmrf_bench.metrics.references import Reference
from lpmrf_bench.metrics.setlevel import SET_METRICS, score
from lpmrf_bench.weights import WeightsError, resolve


def extractor_speed(device: torch.device, size: int, images: int, batch: int) -> tuple[float, str]:
    try:
        resolve(MOBILENET_V2_WEIGHTS, download=False)
        extract, weights = EXTRACTORS.get("mobilenet").build(device, None), "published"
    except WeightsError:
        from torchvision.models import mobilenet_v2

        model = mobilenet_v2().eval().to(device)
        extract, weights = (lambda x: mobilenet_features(model, x)), "random (not cached)"
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    extract(x)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    done = 0
    while done < images:
        extract(x)
        done += batch
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return done / (time.perf_counter() - start), weights


def set_level_seconds(n: int, reference: int, dim: int = 1280) -> dict[str, float]:
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((dim, dim)) / dim**0.5
    ref = Reference("bench", "random", rng.standard_normal((reference, dim)) @ mix, "-", "random")
    feats = rng.standard_normal((n, dim)) @ mix + 0.1
    start = time.perf_counter()
    ref.statistics  # noqa: B018  (computed once per reference, then shared by every configuration)
    times = {"reference statistics": time.perf_counter() - start}
    for name, metric in SET_METRICS.items():
        start = time.perf_counter()
        score(metric, feats, ref)
        times[name] = time.perf_counter() - start
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="64,512", help="comma-separated image sizes for the extractor")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--n", type=int, default=3000, help="images in the scored set")
    ap.add_argument("--reference", type=int, default=70000, help="images in the reference")
    args = ap.parse_args()
    device = torch.device(args.device)
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    for size in (int(s) for s in args.sizes.split(",")):
        speed, weights = extractor_speed(device, size, args.images, args.batch_size)
        print(f"mobilenet at {size} px: {speed:.1f} images/s (batch {args.batch_size}, weights {weights})")
    for what, seconds in set_level_seconds(args.n, args.reference).items():
        print(f"{what}, N={args.n} vs reference {args.reference}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
