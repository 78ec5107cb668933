"""Shared by the Latent-PMRF tests: tiny Sim-VAE folders in the published layout, random non-zero weights."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from lpmrf_bench.models.sim_vae import SimVAE, SimVAEConfig

TINY_VAE = dict(block_out_channels=[8, 16, 16, 16], mid_block_out_channel=16, layers_per_block=2, layers_mid_block=2, latent_channels=4)


def published_vae_config(**overrides) -> dict:
    """A config.json with the keys of the released sienna223/Sim-VAE-c32, and a tiny architecture."""
    cfg = {
        "_class_name": "AutoencoderKLSim",
        "_diffusers_version": "0.33.1",
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["EncoderBlock2D"] * 4,
        "up_block_types": ["DecoderBlock2D"] * 4,
        "mid_block_type": "Block2D",
        "norm_pos": "pre_norm",
        "norm_type": "layer_norm",
        "upsample_method": "interpolate",
        "sample_size": 32,
        "scaling_factor": None,
        "shift_factor": None,
        "force_upcast": True,
        **TINY_VAE,
    }
    cfg.update(overrides)
    return cfg


def random_vae_state(config: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Non-zero random weights for every key of the VAE `config` describes (norm scales near 1)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, t in SimVAE(SimVAEConfig.from_diffusers(config)).state_dict().items():
        noise = torch.randn(t.shape, generator=gen) * 0.2
        out[key] = noise + 1.0 if key.endswith("norm.weight") else noise
    return out


def write_vae_folder(folder: Path, config: dict, state: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file(state, str(folder / "diffusion_pytorch_model.safetensors"))
    return folder


def randomize_flow(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-zero random values in every learned tensor and the Fourier buffer (norm scales near 1).

    The RoPE frequencies are a fixed function of the head layout, not weights, and keep their values.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("rope.freqs"):
                continue
            noise = torch.randn(t.shape, generator=gen) * 0.3
            t.copy_(noise + 1.0 if name.endswith("norm.weight") or name.endswith("fac") else noise)
    return module
