"""Training throughput: optimiser steps/s and images/s per recipe and size config on a device.

    python benchmarks/train.py [--device cuda] [--sizes tiny,published]
                               [--recipes posterior-mean,vae,pmrf,latent-pmrf] [--batch-size 8] [--steps 10]
                               [--warmup 2] [--precision bf16] [--compile] [--workers N]
    python benchmarks/train.py --device cpu --sizes tiny --batch-size 4 --steps 5     # CPU smoke check

Each figure times `Trainer.step` (data rendering and degradation, forward, backward, AdamW, EMA) after `--warmup`
untimed steps; validation and checkpoints are off. The step is then split: `data ms` renders and degrades one
batch, `net f+b ms` is the trained network's forward and backward alone on the inputs a real step gave it (not
shown for the VAE, whose recipe calls encode and decode), `rest ms` the remainder (frozen networks such as the
posterior mean and the VAE's encodes, the loss, AdamW, EMA). The frozen networks the flows need (posterior mean,
VAE) get seeded random weights written to a temporary folder, since speed does not depend on their values. `tiny`
trains on synthetic faces at 64 px, `published` (the published architectures) at 512 px.
"""
from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from lpmrf_bench.cpu_allocator import retain_freed_memory
from lpmrf_bench.models.archs import build_arch
from lpmrf_bench.models.pmrf_loading import save_posterior_mean
from lpmrf_bench.models.sim_vae import SimVAE, SimVAEConfig
from lpmrf_bench.train.config import RECIPE_CONFIGS, apply
from lpmrf_bench.train.loop import Trainer
from lpmrf_bench.train.recipes import save_vae_folder

SIZES = {
    "tiny": {"data": "synthetic-faces:train", "side": 64, "posterior-mean": "swinir_tiny", "pmrf": "hdit_tiny",
             "latent-pmrf": "latent_flow_tiny",
             "vae": {"block_out_channels": (8, 16, 16, 16), "latent_channels": 4, "layers_per_block": 1,
                     "layers_mid_block": 1}},
    "embedded": {"data": "synthetic-faces:train", "side": 64, "posterior-mean": "swinir_S", "pmrf": "hdit_S",
                 "latent-pmrf": "latent_flow_S",
                 "vae": {"block_out_channels": (16, 64), "latent_channels": 4, "layers_per_block": 1,
                         "layers_mid_block": 1}},
    "published": {"data": "synthetic-faces-512:train", "side": 512, "posterior-mean": "swinir_L",
                  "pmrf": "hdit_ImageNet256Sp4", "latent-pmrf": "latent_flow", "vae": {}},
}


def frozen_dependencies(size: str, folder: Path) -> dict[str, str]:
    """Random-weight posterior mean and VAE folders, as the flows' recipes load them."""
    s = SIZES[size]
    torch.manual_seed(0)
    pm = save_posterior_mean(folder / "pm", build_arch(s["posterior-mean"]), s["posterior-mean"], s["side"])
    vae_fields = s["vae"]
    config = SimVAEConfig(**{k: v for k, v in vae_fields.items()},
                          mid_block_out_channel=vae_fields.get("block_out_channels", (512,))[-1])
    save_vae_folder(folder / "vae", SimVAE(config), s["side"])
    return {"posterior_mean": str(pm), "vae": str(folder / "vae")}


def settings(recipe: str, size: str, deps: dict[str, str], args: argparse.Namespace) -> dict:
    s = SIZES[size]
    values = {"data": s["data"], "val_every": 0, "progress": False, "batch_size": args.batch_size, "workers": args.workers,
              "precision": args.precision, "compile": args.compile, "device": args.device,
              "lpips_weight": 0.0 if recipe == "vae" else None}
    if recipe == "vae":
        values.update(s["vae"])
    else:
        values["arch"] = s[recipe]
    if recipe in ("pmrf", "latent-pmrf"):
        values["posterior_mean"] = deps["posterior_mean"]
    if recipe == "latent-pmrf":
        values["vae"] = deps["vae"]
    return {k: v for k, v in values.items() if v is not None}


def seconds_each(calls: list[Callable[[], object]], device: torch.device) -> float:
    """Mean seconds of the calls, run in order (the GPU's queue drained before and after)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for call in calls:
        call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / len(calls)


def measure(trainer: Trainer, steps: int, warmup: int) -> float:
    """Seconds per timed step."""
    for step in range(warmup):
        trainer.step(step)
    return seconds_each([functools.partial(trainer.step, step) for step in range(warmup, warmup + steps)],
                        trainer.device)


def network_inputs(trainer: Trainer, step: int) -> list[torch.Tensor] | None:
    """What the trained network's forward received in one real step; None for a recipe that calls other methods
    of it (the VAE's encode and decode)."""
    seen = []
    hook = trainer.model.register_forward_pre_hook(lambda _, args: seen.append([a.detach().clone() for a in args]))
    try:
        trainer.step(step)
    finally:
        hook.remove()
    return seen[0] if seen else None


def split(trainer: Trainer, first_step: int, repeats: int) -> tuple[float, float | None]:
    """Seconds per step spent rendering and degrading the batch, and in the trained network's forward + backward
    alone (on the inputs a real step gave it); the rest of a step is the frozen networks, the loss, AdamW and EMA."""
    batch, device = trainer.cfg.batch_size, trainer.device
    data = seconds_each([functools.partial(trainer.loader.load, [step * batch + j for j in range(batch)], device)
                         for step in range(first_step, first_step + repeats)], device)
    inputs = network_inputs(trainer, first_step)
    if inputs is None:
        return data, None

    def forward_backward() -> None:
        trainer.model.zero_grad(set_to_none=True)
        trainer.model(*inputs).float().square().mean().backward()

    forward_backward()
    return data, seconds_each([forward_backward] * repeats, device)

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default="tiny")
    parser.add_argument("--recipes", default="posterior-mean,vae,pmrf,latent-pmrf")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--workers", type=int, default=0, help="processes rendering the next step's pairs ahead")
    args = parser.parse_args()
    retained = retain_freed_memory()  # as `lpmrf-bench train` does
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}; batch {args.batch_size}, {args.precision}{', compiled' if args.compile else ''}, "
          f"{args.workers} data workers; {args.steps} timed steps after {args.warmup}; glibc retains freed memory: "
          f"{retained}")
    print(f"{'recipe':<16}{'size':<11}{'steps/s':>10}{'images/s':>11}{'data ms':>10}{'net f+b ms':>12}{'rest ms':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            deps = frozen_dependencies(size, Path(tmp) / size)
            for recipe in args.recipes.split(","):
                cfg = apply(RECIPE_CONFIGS[recipe](), settings(recipe, size, deps, args), "benchmark")
                cfg.check()
                trainer = Trainer(recipe, cfg, Path(tmp) / f"run-{size}-{recipe}")
                seconds = measure(trainer, args.steps, args.warmup)
                data, network = split(trainer, args.warmup + args.steps, args.steps)
                trainer.loader.close()
                parts = (f"{1e3 * data:>10.1f}{1e3 * network:>12.1f}{1e3 * (seconds - data - network):>10.1f}"
                         if network is not None else f"{1e3 * data:>10.1f}{'-':>12}{'-':>10}")
                print(f"{recipe:<16}{size:<11}{1 / seconds:>10.3f}{args.batch_size / seconds:>11.1f}{parts}")


if __name__ == "__main__":
    main()
