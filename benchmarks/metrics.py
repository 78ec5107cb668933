"""Images per second of the full-reference kernels beside their peers, and of a protocol's whole metric suite.

    python benchmarks/metrics.py [--protocol pmrf] [--device cuda] [--batch-size 8] [--images 32] [--repeats 3]
                                 [--suite-repeats 1] [--no-peers]

First table: PSNR, SSIM, their Y variants and MSE (PMRF protocol) against each peer that gives the same
values (scikit-image, a basicsr-style OpenCV/numpy version written here, torchmetrics where its conventions
match), at batch 1 and at --batch-size, in one process: images/s of ours and of the peer, their ratio
(> 1: ours is faster) and the largest difference of the values. Each round times every contender in turn and
the best round counts, so a busy machine slows all alike. Peers are development dependencies
(`pip install -e .[dev]`). torchmetrics' SSIM is not a peer: it pads the image (reflect) and averages the
whole map, not the valid region, so its values differ.
Second table: the protocol's per-image suite, metric by metric, on --device.

Metrics whose weights are not in the cache run with random weights written to a temporary folder (speed
does not depend on the values); the table says which. Downloads are off unless --allow-download.
Inputs are seeded smooth random images with noise, quantised to 8 bit; IndRMSE gets a second such set as
its reference restoration.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
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


def time_metric(fn: MetricFn, batches: list[MetricBatch], device: torch.device, repeats: int = 1) -> float:
    """Seconds for all batches, after one warm-up batch; the best of `repeats` runs."""
    fn(batches[0])
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            fn(batch)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


Kernel = Callable[[torch.Tensor, torch.Tensor], np.ndarray]  # uint8 [B,3,H,W] CPU pair -> float64 [B]


def _per_image(fn: Callable[[np.ndarray, np.ndarray], float]) -> Kernel:
    """A peer that scores one HWC uint8 numpy pair at a time, as its users call it."""
    def run(out: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
        hwc = lambda t: t.permute(0, 2, 3, 1).numpy()  # noqa: E731
        return np.array([fn(a, b) for a, b in zip(hwc(out), hwc(gt))])
    return run


def _basicsr_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """basicsr `calculate_ssim` (metrics/psnr_ssim.py): float64, 2-D Gaussian window by cv2.filter2D, valid crop."""
    import cv2

    k = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(k, k.transpose())
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(a.shape[2]):
        x, y = a[..., i].astype(np.float64), b[..., i].astype(np.float64)
        mu1, mu2 = cv2.filter2D(x, -1, window)[5:-5, 5:-5], cv2.filter2D(y, -1, window)[5:-5, 5:-5]
        s1 = cv2.filter2D(x**2, -1, window)[5:-5, 5:-5] - mu1**2
        s2 = cv2.filter2D(y**2, -1, window)[5:-5, 5:-5] - mu2**2
        s12 = cv2.filter2D(x * y, -1, window)[5:-5, 5:-5] - mu1 * mu2
        values.append((((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))).mean())
    return float(np.mean(values))


def _basicsr_y(img: np.ndarray) -> np.ndarray:
    """basicsr `to_y_channel` of RGB uint8: limited-range BT.601 Y on the 0-255 scale, float64, unrounded."""
    x = img.astype(np.float64) / 255.0
    return x @ np.array([65.481, 128.553, 24.966]) + 16.0


def peers() -> dict[str, dict[str, Kernel]]:
    """metric -> peer name -> kernel, for the peers installed here (scikit-image, opencv, torchmetrics)."""
    from skimage.color import rgb2ycbcr
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity
    from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr
    from torchmetrics.functional.regression import mean_squared_error as tm_mse

    def sk_ssim(a: np.ndarray, b: np.ndarray, channel_axis: int | None = 2) -> float:
        return structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=255, channel_axis=channel_axis,
                                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False)

    def basicsr_psnr(a: np.ndarray, b: np.ndarray) -> float:
        return 10.0 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))

    sk_y = lambda img: rgb2ycbcr(img)[..., 0]  # noqa: E731
    return {
        "psnr": {"scikit-image": _per_image(lambda a, b: peak_signal_noise_ratio(b, a, data_range=255)),
                 "basicsr-numpy": _per_image(basicsr_psnr),
                 "torchmetrics": lambda o, g: tm_psnr(o.double(), g.double(), data_range=255.0, reduction="none",
                                                     dim=(1, 2, 3)).numpy()},
        "ssim": {"scikit-image": _per_image(sk_ssim), "basicsr-opencv": _per_image(_basicsr_ssim)},
        "psnr_y": {"scikit-image": _per_image(lambda a, b: peak_signal_noise_ratio(sk_y(b), sk_y(a), data_range=255)),
                   "basicsr-numpy": _per_image(lambda a, b: basicsr_psnr(_basicsr_y(a), _basicsr_y(b)))},
        "ssim_y": {"scikit-image": _per_image(lambda a, b: sk_ssim(sk_y(a), sk_y(b), None)),
                   "basicsr-opencv": _per_image(lambda a, b: _basicsr_ssim(_basicsr_y(a)[..., None], _basicsr_y(b)[..., None]))},
        "mse": {"scikit-image": _per_image(lambda a, b: mean_squared_error(b, a)),
                "torchmetrics": lambda o, g: np.array([tm_mse(x.double(), y.double()).item() for x, y in zip(o, g)])},
    }


def interleaved_best(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best seconds of each function over `repeats` rounds that run all of them in turn, after a warm-up, so
    that a busy machine slows every contender alike."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def compare_with_peers(out: torch.Tensor, gt: torch.Tensor, batch_sizes: list[int], repeats: int) -> None:
    """Print ours vs every installed peer per metric and batch size (CPU, one process)."""
    try:
        table = peers()
    except ImportError as exc:
        print(f"peers skipped: {exc.name} is not installed (pip install -e .[dev])")
        return
    print(f"{'metric':<8} {'batch':>5} {'peer':<15} {'ours img/s':>11} {'peer img/s':>11} {'ratio':>7} {'max |diff|':>11}")
    n = out.shape[0]
    for metric, by_peer in table.items():
        fn = METRICS.get(protocol("pmrf")[metric]).build(torch.device("cpu"), None)
        for b in batch_sizes:
            chunks = [(out[i : i + b], gt[i : i + b]) for i in range(0, n, b)]
            contenders = {"ours": lambda: [fn(MetricBatch(out=o, gt=g)) for o, g in chunks]}
            contenders |= {peer: (lambda k=kernel: [k(o, g) for o, g in chunks]) for peer, kernel in by_peer.items()}
            best = interleaved_best(contenders, repeats)
            values = torch.cat([fn(MetricBatch(out=o, gt=g)) for o, g in chunks]).numpy()
            for peer, kernel in by_peer.items():
                diff = np.abs(np.concatenate([kernel(o, g) for o, g in chunks]) - values).max()
                print(f"{metric:<8} {b:>5} {peer:<15} {n / best['ours']:>11.2f} {n / best[peer]:>11.2f} "
                      f"{best[peer] / best['ours']:>7.2f} {diff:>11.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="pmrf")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="peer table: the best of this many rounds")
    parser.add_argument("--suite-repeats", type=int, default=1, help="suite table: the best of this many runs")
    parser.add_argument("--no-peers", action="store_true", help="only the protocol suite")
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--allow-download", action="store_true")
    args = parser.parse_args()
    if not args.allow_download:
        os.environ[OFFLINE_ENV] = "1"
    device = torch.device(args.device)
    out, gt, ref = (images(args.images, args.size, seed) for seed in (0, 1, 2))
    cpu = f"CPU ({len(os.sched_getaffinity(0))} cores given, {os.cpu_count()} visible)"
    print(f"{args.images} images {args.size}x{args.size}, {cpu}, torch {torch.__version__}, python {sys.version.split()[0]}")
    if not args.no_peers:
        compare_with_peers(out, gt, sorted({1, args.batch_size}), args.repeats)
        print()
    out, gt, ref = out.to(device), gt.to(device), ref.to(device)
    batches = [MetricBatch(out=out[i : i + args.batch_size], gt=gt[i : i + args.batch_size],
                           reference=ref[i : i + args.batch_size]) for i in range(0, args.images, args.batch_size)]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    print(f"{args.protocol} suite, batch {args.batch_size}, {name}")
    print(f"{'metric':<10} {'spec':<58} {'weights':<10} {'images/s':>10}")
    total = 0.0
    with tempfile.TemporaryDirectory() as scratch:
        for metric, spec_name in protocol(args.protocol).items():
            if spec_name not in METRICS:
                print(f"{metric:<10} {spec_name:<58} {'(not registered)':<10}")
                continue
            spec = METRICS.get(spec_name)
            fn, weights = build(spec, device, args.weights_dir, Path(scratch))
            seconds = time_metric(fn, batches, device, args.suite_repeats)
            total += seconds
            print(f"{metric:<10} {spec_name:<58} {weights:<10} {args.images / seconds:>10.2f}")
    print(f"{'suite':<10} {'(all of the above, one after another)':<58} {'':<10} {args.images / total:>10.2f}")


if __name__ == "__main__":
    main()
