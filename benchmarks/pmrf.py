"""PMRF throughput: images/s of whole restorations (posterior mean + K flow steps) and the HDiT's achieved
FLOP/s as a fraction of the GPU's bf16 dense peak.

    python benchmarks/pmrf.py [--device cuda] [--size 512] [--batch-size 8] [--steps 25]
                              [--modes bf16,bf16-compiled,fp32] [--repeats 3] [--peak-tflops N]
    python benchmarks/pmrf.py --device cpu --size 64 --tiny --batch-size 2 --steps 5   # CPU smoke check

Networks get seeded random weights (speed does not depend on the values). FLOPs per forward come from
`torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions, SDPA); neighborhood attention, which it
cannot trace, is added analytically as the useful work 4 * B * heads * H * W * k^2 * d_head (QK and AV),
so the fraction of peak is a model-FLOPs utilisation, not a count of what the block-sparse kernel executes.
fp32 runs allow TF32 matmuls (as PMRF's inference does with `set_float32_matmul_precision('high')`).
"""
from __future__ import annotations

import argparse
import time
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode

from lpmrf_bench.models import hdit
from lpmrf_bench.models.pmrf_loading import PMRFNetworks, PMRFSettings
from lpmrf_bench.restorers.base import RestoreBatch, image_seed
from lpmrf_bench.restorers.pmrf import PMRFRestorer

# dense bf16 tensor-core peaks (TFLOP/s, no sparsity), matched by substring of the device name
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                    "RTX 4090": 165.0, "RTX 3090": 71.0}
MODES = ("bf16", "bf16-compiled", "fp32")


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)


def forward_flops(module: torch.nn.Module, *args: torch.Tensor) -> int:
    """FLOPs of one forward; neighborhood attention counted analytically (flex cannot be traced)."""
    extra = 0

    def counted_neighborhood(q, k, v, kernel_size, scale=None):
        nonlocal extra
        b, heads, h, w, d = q.shape
        extra += 4 * b * heads * h * w * kernel_size**2 * d
        return v.clone()

    with torch.no_grad(), mock.patch.object(hdit, "neighborhood_attention", counted_neighborhood), \
            FlopCounterMode(display=False) as counter:
        module(*args)
    return counter.get_total_flops() + extra


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_restore(restorer: PMRFRestorer, lq: torch.Tensor, knobs: dict, repeats: int) -> float:
    """Seconds per batch (median), each call from an empty cache so the posterior mean is included."""
    ids = [f"img{i}" for i in range(lq.shape[0])]
    seeds = [image_seed(0, "bench", i, 0) for i in ids]
    times = []
    for _ in range(repeats + 1):  # the first call warms up (mask building, compilation)
        batch = RestoreBatch(lq=lq, image_ids=ids, seeds=seeds)
        synchronize(lq.device)
        start = time.perf_counter()
        restorer(batch, knobs)
        synchronize(lq.device)
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--modes", default=None,
                        help=f"comma-separated subset of {MODES} (default: all on CUDA, bf16,fp32 elsewhere)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="tiny test architectures (CPU smoke check)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 dense peak, if not auto-detected")
    args = parser.parse_args()
    device = torch.device(args.device)
    modes = [m for m in (args.modes or (",".join(MODES) if device.type == "cuda" else "bf16,fp32")).split(",") if m]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}; choose from {MODES}")

    torch.manual_seed(0)
    settings = PMRFSettings(flow_arch="hdit_tiny", mmse_arch="swinir_tiny", input_size=args.size) if args.tiny \
        else PMRFSettings(input_size=args.size)
    nets = PMRFNetworks(settings).eval().to(device)
    with torch.no_grad():  # the published init zeroes residual outputs; give them values too
        for param in nets.parameters():
            if not param.any():
                param.normal_(0.0, 0.02)
    lq = torch.rand(args.batch_size, 3, args.size, args.size, generator=torch.Generator().manual_seed(1)).to(device)
    t = torch.full((args.batch_size,), 0.5, device=device)
    flow_flops = forward_flops(nets.model, lq, t)
    mmse_flops = forward_flops(nets.mmse_model, lq)
    per_image = (args.steps * flow_flops + mmse_flops) / args.batch_size
    peak = peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}; {settings.flow_arch} + {settings.mmse_arch} at {args.size}, batch {args.batch_size}, "
          f"K={args.steps}")
    print(f"GFLOP per image: HDiT forward {flow_flops / args.batch_size / 1e9:.4g}, "
          f"SwinIR {mmse_flops / args.batch_size / 1e9:.4g}, whole restoration {per_image / 1e9:.4g}")
    torch.set_float32_matmul_precision("high")
    print(f"{'mode':<15}{'s/batch':>10}{'images/s':>10}{'TFLOP/s':>12}{'of bf16 peak':>14}")
    for mode in modes:
        restorer = PMRFRestorer(nets)
        if mode == "bf16-compiled":  # a second copy, so the eager modes stay eager
            compiled = PMRFNetworks(settings).eval().to(device)
            compiled.load_state_dict(nets.state_dict())
            with torch.no_grad():  # one eager call caches the block masks, which the compiled graph then reads
                compiled.model(lq, t)
            compiled.model.compile()
            compiled.mmse_model.compile()
            restorer = PMRFRestorer(compiled)
        knobs = {"steps": args.steps, "noise_std": 0.1, "precision": "fp32" if mode == "fp32" else "bf16"}
        seconds = time_restore(restorer, lq, knobs, args.repeats)
        achieved = per_image * args.batch_size / seconds / 1e12
        share = f"{achieved / peak:.1%}" if peak else "n/a"
        print(f"{mode:<15}{seconds:>10.3f}{args.batch_size / seconds:>10.3g}{achieved:>12.4g}{share:>14}")


if __name__ == "__main__":
    main()
