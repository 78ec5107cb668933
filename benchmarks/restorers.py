"""Throughput of any registered restorer: images/s of whole `restore` calls, per precision.

    python benchmarks/restorers.py --method codeformer [--size 512] [--precision fp32,bf16] [--device cpu|cuda]
                                   [--batch-size 4] [--repeats 3] [--weights NAME|PATH] [--set knob=v ...]
    python benchmarks/restorers.py --method codeformer --device cpu --batch-size 1 --repeats 1   # CPU figures

The method's default (or given) weights are used when they resolve; otherwise, when the method offers
`load_random`, its published architecture with seeded random values (speed does not depend on the values),
and the output says so. Inputs are seeded uniform images; the first call is a warm-up and is not timed.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

from lpmrf_bench.registry import UnavailableError
from lpmrf_bench.restorers import RestoreBatch, get_restorer, image_seed
from lpmrf_bench.weights import WeightsError


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {torch.get_num_threads()} threads of {os.cpu_count()} cores"


def time_restore(restorer, lq: torch.Tensor, knobs: dict, repeats: int) -> float:
    """Median seconds per batch over `repeats` timed calls after one warm-up call."""
    ids = [f"img{i}" for i in range(lq.shape[0])]
    seeds = [image_seed(0, "bench", i, 0) for i in ids]
    times = []
    for _ in range(repeats + 1):
        batch = RestoreBatch(lq=lq, image_ids=ids, seeds=seeds)  # a fresh cache: nothing carried between calls
        synchronize(lq.device)
        start = time.perf_counter()
        restorer(batch, knobs)
        synchronize(lq.device)
        times.append(time.perf_counter() - start)
    timed = sorted(times[1:])
    return timed[len(timed) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--precision", default=None,
                        help="comma-separated values of the precision knob (default: fp32,bf16 where it has one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", default=None, help="weight-set name or path (default: the method's default)")
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=V", help="other knob values")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights, when they are used")
    args = parser.parse_args()
    try:
        spec = get_restorer(args.method)
    except (KeyError, UnavailableError) as exc:
        parser.error(str(exc))
    try:
        knobs = spec.default_knobs()
        knobs.update({k: spec.knob(k).parse(v) for k, _, v in (s.partition("=") for s in args.set)})
        has_precision = "precision" in knobs
        if args.precision is not None or has_precision:
            precisions = [spec.knob("precision").parse(p) for p in (args.precision or "fp32,bf16").split(",") if p]
        else:
            precisions = [None]  # a method without the knob runs as it is
    except (KeyError, ValueError) as exc:
        parser.error(str(exc).strip("'\""))
    device = torch.device(args.device)
    weights = args.weights or spec.default_weights
    try:
        restorer, label = spec.load(weights, device), weights or "none needed"
    except WeightsError as exc:
        if spec.load_random is None or args.weights is not None:
            sys.exit(f"error: {exc}")
        restorer = spec.load_random(device, args.seed)
        label = f"random (seed {args.seed}; {weights!r} weights not found here: {str(exc).splitlines()[0]})"
    size = getattr(restorer, "input_size", spec.input_size)
    if size is not None and size != args.size:
        parser.error(f"{args.method} with these weights takes {size}x{size} inputs; pass --size {size}")
    lq = torch.rand(args.batch_size, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)).to(device)
    print(f"method {args.method}; weights {label}")
    print(f"device {device_name(device)}; torch {torch.__version__}; {args.size}x{args.size}, batch {args.batch_size}, "
          f"knobs {', '.join(f'{k}={v}' for k, v in knobs.items() if k != 'precision') or '-'}")
    print(f"{'precision':<10}{'s/batch':>10}{'images/s':>10}{'peak GiB':>10}")
    for precision in precisions:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        run_knobs = knobs if precision is None else {**knobs, "precision": precision}
        seconds = time_restore(restorer, lq, run_knobs, args.repeats)
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f}" if device.type == "cuda" else "n/a"
        print(f"{precision or 'as is':<10}{seconds:>10.3f}{args.batch_size / seconds:>10.3g}{peak:>10}")


if __name__ == "__main__":
    main()
