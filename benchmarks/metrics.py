"""Images per second of a protocol's per-image metric suite at 512x512, per metric and in total.

    python benchmarks/metrics.py [--protocol pmrf] [--device cuda] [--batch-size 8] [--images 64]

Metrics whose weights are not in the cache run with random weights written to a temporary folder (speed
does not depend on the values); the table says which. Downloads are off unless --allow-download.
Inputs are seeded smooth random images with noise, quantised to 8 bit; IndRMSE gets a second such set as
its reference restoration.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision

from lpmrf_bench.metrics import METRICS, protocol
from lpmrf_bench.metrics.base import MetricBatch, MetricFn, MetricSpec
from lpmrf_bench.weights import OFFLINE_ENV, WeightsMissingError


def _features(net: Callable[..., torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {f"features.{k}": v for k, v in net(weights=None).features.state_dict().items()}


def _arcface() -> dict[str, torch.Tensor]:
    from lpmrf_bench.models.arcface import ArcFaceResNet18

    return ArcFaceResNet18().state_dict()


def _fan() -> dict[str, dict[str, torch.Tensor]]:
    from lpmrf_bench.models.fan import FAN

    return {"state_dict": FAN().state_dict()}


RANDOM_WEIGHTS: dict[str, Callable[[], object]] = {
    "metrics/alexnet-owt-7be5be79.pth": lambda: _features(torchvision.models.alexnet),
    "metrics/vgg16-397923af.pth": lambda: _features(torchvision.models.vgg16),
    "metrics/resnet18_110.pth": _arcface,
    "metrics/alignment_WFLW_4HG.pth": _fan,
}


def random_weights_dir(spec: MetricSpec, root: Path) -> Path:
    """Write seeded random weights for every file `spec` needs into `root` (the cache layout)."""
    for wf in spec.weights:
        if wf.path not in RANDOM_WEIGHTS:
            raise WeightsMissingError(f"no random stand-in for {wf.path}; put the real file in the cache")
        torch.manual_seed(0)
        (root / wf.path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(RANDOM_WEIGHTS[wf.path](), root / wf.path)
    return root


def build(spec: MetricSpec, device: torch.device, weights_dir: str | None, scratch: Path) -> tuple[MetricFn, str]:
    try:
        return spec.build(device, weights_dir), "published" if spec.weights else "-"
    except WeightsMissingError:
        return spec.build(device, str(random_weights_dir(spec, scratch))), "RANDOM"


def images(n: int, size: int, seed: int) -> torch.Tensor:
    """uint8 [n,3,size,size]: smooth random colour fields with fine noise (seeded)."""
    g = torch.Generator().manual_seed(seed)
    low = F.interpolate(torch.rand(n, 3, 12, 12, generator=g), size=(size, size), mode="bicubic", align_corners=False)
    x = low * 255 + torch.randn(n, 3, size, size, generator=g) * 6
    return x.round().clamp(0, 255).to(torch.uint8)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_metric(fn: MetricFn, batches: list[MetricBatch], device: torch.device) -> float:
    """Seconds for all batches, after one warm-up batch."""
    fn(batches[0])
    sync(device)
    start = time.perf_counter()
    for batch in batches:
        fn(batch)
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="pmrf")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--allow-download", action="store_true")
    args = parser.parse_args()
    if not args.allow_download:
        os.environ[OFFLINE_ENV] = "1"
    device = torch.device(args.device)
    out, gt, ref = (images(args.images, args.size, seed).to(device) for seed in (0, 1, 2))
    batches = [MetricBatch(out=out[i : i + args.batch_size], gt=gt[i : i + args.batch_size],
                           reference=ref[i : i + args.batch_size]) for i in range(0, args.images, args.batch_size)]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} threads visible)"
    print(f"{args.protocol} suite, {args.images} images {args.size}x{args.size}, batch {args.batch_size}, {name}, "
          f"torch {torch.__version__}")
    print(f"{'metric':<10} {'spec':<58} {'weights':<10} {'images/s':>10}")
    total = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        for metric, spec_name in protocol(args.protocol).items():
            if spec_name not in METRICS:
                print(f"{metric:<10} {spec_name:<58} {'(not registered)':<10}")
                continue
            spec = METRICS.get(spec_name)
            fn, weights = build(spec, device, args.weights_dir, Path(scratch))
            seconds = time_metric(fn, batches, device)
            total += seconds
            print(f"{metric:<10} {spec_name:<58} {weights:<10} {args.images / seconds:>10.2f}")
    print(f"{'suite':<10} {'(all of the above, one after another)':<58} {'':<10} {args.images / total:>10.2f}")


if __name__ == "__main__":
    main()
