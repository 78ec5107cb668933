"""What the two CPU measures buy the embedded flows: tiled neighborhood attention and retained freed memory.

    python benchmarks/cpu_inference.py [--threads 2] [--batch-size 16] [--repeats 10]

1. Neighborhood attention, the tiled CPU path against dense SDPA with the windows as a boolean [H*W, H*W] mask
   (the CPU path it replaced), forward and forward + backward, at the embedded flows' shapes (k = 3) and with
   k = 7 as the published models use it.
2. One forward of each embedded flow network (`latent_flow_S` on a 32x32x4 latent, `hdit_S` on 64 px images;
   seeded random weights, speed does not depend on them) with glibc's default malloc thresholds and with
   `retain_freed_memory`, each in a fresh process since the setting is process-wide.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lpmrf_bench.cpu_allocator import retain_freed_memory
from lpmrf_bench.models.archs import build_arch
from lpmrf_bench.models.latent_flow import LatentFlow, LatentFlowConfig
from lpmrf_bench.models.neighborhood import tiled_neighborhood_attention, window_start


def dense_masked_attention(q, k, v, kernel_size: int) -> torch.Tensor:
    """The replaced CPU path: SDPA over all H*W keys with a boolean mask of each query's clamped window."""
    b, heads, height, width, _ = q.shape
    i, j = torch.arange(height), torch.arange(width)
    si, sj = window_start(i, height, kernel_size), window_start(j, width, kernel_size)
    rows = (i[None, :] >= si[:, None]) & (i[None, :] < si[:, None] + kernel_size)
    cols = (j[None, :] >= sj[:, None]) & (j[None, :] < sj[:, None] + kernel_size)
    mask = (rows[:, None, :, None] & cols[None, :, None, :]).reshape(height * width, height * width)
    flat = [t.reshape(b, heads, height * width, t.shape[-1]) for t in (q, k, v)]
    return F.scaled_dot_product_attention(*flat, attn_mask=mask).reshape(b, heads, height, width, -1)


def milliseconds(call: Callable[[], object], repeats: int) -> float:
    call()
    start = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - start) / repeats * 1000


def attention_table(batch: int, repeats: int) -> None:
    print(f"{'neighborhood attention':<34}{'dense fwd':>11}{'tiled fwd':>11}{'dense f+b':>11}{'tiled f+b':>11}  (ms)")
    for heads, side, d, kernel in ((4, 16, 16, 3), (4, 32, 16, 3), (4, 32, 16, 7), (4, 64, 64, 7)):
        q, k, v = (torch.randn(batch, heads, side, side, d) for _ in range(3))
        row = []
        for grad in (False, True):
            for attend in (dense_masked_attention, tiled_neighborhood_attention):
                leaves = [t.clone().requires_grad_(grad) for t in (q, k, v)]

                def call(attend=attend, leaves=leaves, grad=grad):
                    out = attend(*leaves, kernel)
                    if grad:
                        out.square().sum().backward()

                with torch.set_grad_enabled(grad):
                    row.append(milliseconds(call, repeats))
        label = f"B{batch} {heads} heads {side}x{side} d{d} k{kernel}"
        print(f"{label:<34}" + "".join(f"{ms:>11.1f}" for ms in row))


def flow_forward_ms(batch: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    nets = {"latent_flow_S 32x32x4": (LatentFlow(LatentFlowConfig.small(4)), (4, 32)),
            "hdit_S 64x64x3": (build_arch("hdit_S"), (3, 64))}
    times = {}
    with torch.inference_mode():
        for name, (net, (channels, side)) in nets.items():
            x, t = torch.randn(batch, channels, side, side), torch.full((batch,), 0.5)
            times[name] = milliseconds(lambda net=net, x=x, t=t: net.eval()(x, t), repeats)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--flows-only", choices=("default", "retained"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.flows_only:
        if args.flows_only == "retained" and not retain_freed_memory():
            raise SystemExit("retain_freed_memory() changed nothing here (libc is not glibc)")
        for name, ms in flow_forward_ms(args.batch_size, args.repeats).items():
            print(f"{name}\t{ms:.1f}")
        return
    print(f"cpu: {torch.get_num_threads()} threads, batch {args.batch_size}, mean of {args.repeats} calls after one")
    attention_table(args.batch_size, args.repeats)
    results = {}
    for mode in ("default", "retained"):
        out = subprocess.run([sys.executable, __file__, "--flows-only", mode, "--threads", str(args.threads),
                              "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True).stdout
        results[mode] = dict(line.split("\t") for line in out.strip().splitlines())
    print(f"\n{'flow forward (ms per batch)':<34}{'glibc default':>15}{'retained':>11}")
    for name in results["default"]:
        print(f"{name:<34}{float(results['default'][name]):>15.1f}{float(results['retained'][name]):>11.1f}")


if __name__ == "__main__":
    main()
