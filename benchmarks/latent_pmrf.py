"""Images per second of Latent-PMRF beside PMRF: whole restorations (posterior mean, flow steps, VAE).

    python benchmarks/latent_pmrf.py [--device cuda] [--size 512] [--steps 25] [--batch-size 8]
                                     [--precision bf16] [--repeats 3]
    python benchmarks/latent_pmrf.py --tiny        # CPU smoke check with the tiny test architectures

Networks get seeded random weights (speed does not depend on the values; Latent-PMRF's flow was never
published anyway): PMRF = SwinIR-L + HDiT ImageNet256Sp4; Latent-PMRF = SwinIR-L + Sim-VAE f8c32 + our default
latent flow. Each timed call starts from an empty batch cache, so the posterior mean is counted for both.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lpmrf_bench.models.latent_flow import LatentFlow, LatentFlowConfig
from lpmrf_bench.models.pmrf_loading import PMRFNetworks, PMRFSettings
from lpmrf_bench.models.sim_vae import SimVAE, SimVAEConfig
from lpmrf_bench.restorers.base import RestoreBatch, image_seed
from lpmrf_bench.restorers.latent_pmrf import LatentPMRFRestorer
from lpmrf_bench.restorers.pmrf import PMRFRestorer


@dataclass(frozen=True)
class Setup:
    size: int
    hdit: str
    swinir: str
    vae: SimVAEConfig
    flow: LatentFlowConfig


FULL = Setup(512, "hdit_ImageNet256Sp4", "swinir_L", SimVAEConfig(), LatentFlowConfig())
TINY = Setup(
    64, "hdit_tiny", "swinir_tiny",
    SimVAEConfig(block_out_channels=(8, 16, 16, 16), mid_block_out_channel=16, latent_channels=4),
    LatentFlowConfig.tiny(in_channels=4),
)


def build(setup: Setup, device: torch.device) -> dict[str, Callable[[RestoreBatch, dict], torch.Tensor]]:
    torch.manual_seed(0)
    nets = PMRFNetworks(PMRFSettings(flow_arch=setup.hdit, mmse_arch=setup.swinir, input_size=setup.size))
    nets = nets.to(device).eval().requires_grad_(False)
    vae = SimVAE(setup.vae).to(device).eval().requires_grad_(False)
    flow = LatentFlow(setup.flow).to(device).eval().requires_grad_(False)
    return {
        "pmrf": PMRFRestorer(nets),
        "latent-pmrf": LatentPMRFRestorer(flow, vae, nets.mmse_model, "sigma", 1.0, setup.size),
    }


def make_batch(n: int, size: int, device: torch.device) -> RestoreBatch:
    ids = [f"bench{i}" for i in range(n)]
    lq = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    return RestoreBatch(lq=lq, image_ids=ids, seeds=[image_seed(0, "bench", i, 0) for i in ids])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(restore: Callable, knobs: dict, n: int, size: int, device: torch.device, repeats: int) -> float:
    """Mean throughput over `repeats` calls after one warm-up call (compilation, allocator, mask caches)."""
    with torch.inference_mode():
        restore(make_batch(n, size, device), knobs)
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            restore(make_batch(n, size, device), knobs)
        sync(device)
    return n * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=None, help="image side (default 512, or 64 with --tiny)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="tiny architectures (CPU smoke check)")
    args = parser.parse_args()
    device = torch.device(args.device)
    setup = TINY if args.tiny else FULL
    size = args.size or setup.size
    knobs = {"steps": args.steps, "noise_std": 0.1, "latent_sample": "sample", "precision": args.precision}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, {size}x{size}, K={args.steps}, batch {args.batch_size}, {args.precision}, "
          f"{'tiny' if args.tiny else 'published-size'} networks with random weights")
    for method, restore in build(setup, device).items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        ips = images_per_second(restore, knobs, args.batch_size, size, device, args.repeats)
        peak = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else ""
        print(f"{method:12s} {ips:8.2f} images/s{peak}")


if __name__ == "__main__":
    main()
