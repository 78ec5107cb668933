"""The four training recipes: what is trained, its loss, and the folder its EMA weights are exported as.

A recipe builds a `Task`: the trained module, a loss over one micro-batch, and `export(folder, ema)`, which
writes the folder the benchmark's restorer loads (`--weights METHOD=DIR`). Validation loads that same folder
through that same restorer (`restorer` and `knobs`).

- posterior-mean: SwinIR on (LQ, GT), MSE or L1; exported in our format, kind "posterior-mean".
- vae: Sim-VAE, L1 reconstruction of a posterior draw + kl_weight * KL + lpips_weight * LPIPS-VGG (dropped, with
  a note, when the VGG weights do not resolve); exported in the published diffusers layout.
- pmrf: HDiT flow, PMRF's recipe: source clip(x̂(y), 0, 1) + noise_std * eps, straight path in the "t"
  convention, velocity MSE; exported with its frozen posterior mean as a PMRF checkpoint.
- latent-pmrf: latent flow; source = VAE posterior draw of x̂(y) + noise_std * eps, target = VAE posterior draw of
  x, Latent-PMRF's "sigma" convention; exported as a Latent-PMRF checkpoint recording the VAE and posterior mean.
"""
from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from lpmrf_bench.atomic import atomic_write
from lpmrf_bench.models.archs import build_arch, config_fields
from lpmrf_bench.models.hdit import HDIT_CONFIGS
from lpmrf_bench.models.latent_flow import LatentFlow, LatentFlowConfig
from lpmrf_bench.models.pmrf_loading import PMRFNetworks, PMRFSettings, load_posterior_mean, save_pmrf, save_posterior_mean
from lpmrf_bench.models.sampler import TIME_SAMPLINGS, flow_matching_loss, time_sampling_spec
from lpmrf_bench.models.sim_vae import CLASS_NAME, CONFIG_FILE, PUBLISHED, WEIGHTS_FILE, SimVAE, SimVAEConfig, load_sim_vae
from lpmrf_bench.models.swinir import SWINIR_CONFIGS
from lpmrf_bench.restorers import RestoreBatch
from lpmrf_bench.restorers.latent_pmrf import WeightsRef, encode_latent, posterior_mean_ref, save_latent_pmrf
from lpmrf_bench.train.config import (ConfigError, LatentPMRFConfig, PMRFConfig, PosteriorMeanConfig, TrainConfig,
                                      VAEConfig)
from lpmrf_bench.weights import WeightsError

log = logging.getLogger(__name__)

Loss = Callable[[nn.Module, RestoreBatch, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Task:
    """A recipe built for one run: `loss(model, batch, times)` -> (loss, named parts for the log); `times` are
    stratified uniform draws in [0, 1), which the flows map by their `time_sampling` and the others ignore."""

    model: nn.Module
    loss: Loss
    export: Callable[[Path, nn.Module, bool], None]  # (folder, ema model, self_contained)
    restorer: str
    knobs: dict[str, Any]
    loss_spec: str  # how the logged loss is computed (stored beside every loss value)
    notes: tuple[str, ...] = ()


def _registered(name: str, configs: dict[str, Any], key: str = "arch") -> None:
    if name not in configs:
        raise ConfigError(f"{key} {name!r} is not a known size; known: {', '.join(configs)}")


def _frozen(module: nn.Module, device: torch.device) -> nn.Module:
    return module.to(device).eval().requires_grad_(False)


def _posterior_mean(weights: str, device: torch.device) -> tuple[nn.Module, int | None, WeightsRef]:
    model, input_size = load_posterior_mean(weights)
    return _frozen(model, device), input_size, posterior_mean_ref(weights)


def posterior_mean_task(cfg: PosteriorMeanConfig, device: torch.device, size: int) -> Task:
    _registered(cfg.arch, SWINIR_CONFIGS)
    model = build_arch(cfg.arch).to(device)
    pixel_loss = F.mse_loss if cfg.loss == "mse" else F.l1_loss

    def loss(net: nn.Module, batch: RestoreBatch, times: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        value = pixel_loss(net(batch.lq), batch.gt)
        return value, {cfg.loss: value.item()}

    def export(folder: Path, ema: nn.Module, self_contained: bool) -> None:
        save_posterior_mean(folder, ema, cfg.arch, size)

    return Task(model, loss, export, "posterior-mean", {"precision": cfg.precision}, f"{cfg.loss}/rgb01/xhat-vs-gt")


def vae_config_json(config: SimVAEConfig, size: int) -> dict[str, Any]:
    """The published `config.json` keys (huggingface.co/sienna223/Sim-VAE-c32) for `config`."""
    n = len(config.block_out_channels)
    return {
        "_class_name": CLASS_NAME, "in_channels": config.in_channels, "out_channels": config.out_channels,
        "down_block_types": ["EncoderBlock2D"] * n, "up_block_types": ["DecoderBlock2D"] * n,
        "block_out_channels": list(config.block_out_channels), "mid_block_type": "Block2D",
        "mid_block_out_channel": config.mid_block_out_channel, "layers_per_block": config.layers_per_block,
        "layers_mid_block": config.layers_mid_block, "norm_pos": config.norm_pos, "norm_type": config.norm_type,
        "upsample_method": config.upsample_method, "latent_channels": config.latent_channels, "sample_size": size,
        "scaling_factor": None, "shift_factor": None, "force_upcast": True,
    }


def save_vae_folder(folder: Path, model: SimVAE, size: int) -> None:
    """The VAE in the published diffusers layout, which `load_sim_vae(folder)` and `vae-recon` read."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp)))
    text = json.dumps(vae_config_json(model.config, size), indent=1) + "\n"
    atomic_write(folder / CONFIG_FILE, lambda tmp: tmp.write_text(text))


def _lpips_vgg(device: torch.device) -> tuple[nn.Module | None, str | None]:
    from lpmrf_bench.metrics.lpips import build_lpips

    try:
        return build_lpips("vgg", device), None
    except WeightsError as exc:
        return None, f"the LPIPS term is dropped: {str(exc).splitlines()[0]}"


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) summed over latent elements, averaged over the batch (diffusers' kl())."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum(dim=(1, 2, 3)).mean()


def vae_task(cfg: VAEConfig, device: torch.device, size: int) -> Task:
    try:
        config = SimVAEConfig(block_out_channels=cfg.block_out_channels, mid_block_out_channel=cfg.block_out_channels[-1],
                              layers_per_block=cfg.layers_per_block, layers_mid_block=cfg.layers_mid_block,
                              latent_channels=cfg.latent_channels)
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"block_out_channels: {exc}") from None
    model = SimVAE(config).to(device)
    lpips_net, note = _lpips_vgg(device) if cfg.lpips_weight > 0 else (None, None)

    def loss(net: nn.Module, batch: RestoreBatch, times: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch.gt * 2 - 1
        mean, logvar = net.encode(x)
        recon = net.decode(SimVAE.sample(mean, logvar, batch.noise(mean.shape[1:], "vae-posterior")))
        l1 = (recon - x).abs().mean()
        kl = kl_to_standard_normal(mean, logvar)
        total, parts = l1 + cfg.kl_weight * kl, {"l1": l1.item(), "kl": kl.item()}
        if lpips_net is not None:
            perceptual = lpips_net(recon.float().clamp(-1, 1), x).mean()
            total = total + cfg.lpips_weight * perceptual
            parts["lpips"] = perceptual.item()
        return total, parts

    def export(folder: Path, ema: nn.Module, self_contained: bool) -> None:
        save_vae_folder(folder, ema, size)

    terms = f"l1+{cfg.kl_weight:g}kl" + (f"+{cfg.lpips_weight:g}lpips-vgg" if lpips_net is not None else "")
    return Task(model, loss, export, "vae-recon", {"latent_sample": "mode"}, f"{terms}/pm1/posterior-draw",
                (note,) if note else ())


def pmrf_task(cfg: PMRFConfig, device: torch.device, size: int) -> Task:
    _registered(cfg.arch, HDIT_CONFIGS)
    posterior_mean, _, pm_ref = _posterior_mean(_absolute(cfg.posterior_mean), device)
    model = build_arch(cfg.arch).to(device)
    flow_times = TIME_SAMPLINGS[cfg.time_sampling]

    def loss(net: nn.Module, batch: RestoreBatch, times: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            xhat = posterior_mean(batch.lq).float().clamp(0, 1)
        source = xhat + cfg.noise_std * batch.noise(xhat.shape[1:], "flow-source")
        value = flow_matching_loss(net, batch.gt, source, flow_times(times), "t")
        return value, {"velocity_mse": value.item()}

    def export(folder: Path, ema: nn.Module, self_contained: bool) -> None:
        settings = PMRFSettings(flow_arch=cfg.arch, mmse_arch=_swinir_name(posterior_mean), noise_std=cfg.noise_std,
                                input_size=size, mmse_fields=config_fields(posterior_mean.config))
        nets = PMRFNetworks(settings)
        nets.model.load_state_dict(ema.state_dict())
        nets.mmse_model.load_state_dict(posterior_mean.state_dict())
        save_pmrf(folder, nets, ({"name": cfg.posterior_mean, "sha256": pm_ref.sha256},))

    knobs = {"steps": cfg.val_steps, "noise_std": cfg.noise_std, "precision": cfg.precision}
    spec = f"velocity-mse/t/{time_sampling_spec(cfg.time_sampling)}/noise{cfg.noise_std:g}"
    return Task(model, loss, export, "pmrf", knobs, spec)


def _swinir_name(model: nn.Module) -> str:
    return next((n for n, c in SWINIR_CONFIGS.items() if c == model.config), "swinir_trained")


LATENT_FLOW_SIZES: dict[str, Callable[[int], LatentFlowConfig]] = {
    "latent_flow": lambda channels: LatentFlowConfig(in_channels=channels),
    "latent_flow_tiny": LatentFlowConfig.tiny,
    "latent_flow_S": LatentFlowConfig.small,
}


def _absolute(name: str) -> str:
    """Published names as they are; paths absolute (a checkpoint resolves relative names inside itself)."""
    return name if name in PUBLISHED or name == "official" else str(Path(name).expanduser().resolve())


def _copy_into(folder: Path, name: str, target: str) -> str:
    """Copy a local weights file or folder into the export (published names stay names); the recorded name."""
    if name in PUBLISHED or name == "official":
        return name
    source = Path(name)
    dest = folder / (target + source.suffix if source.is_file() else target)
    if source.is_dir():
        shutil.copytree(source, dest, dirs_exist_ok=True)
    else:
        shutil.copy2(source, dest)
    return dest.name


def latent_pmrf_task(cfg: LatentPMRFConfig, device: torch.device, size: int) -> Task:
    _registered(cfg.arch, LATENT_FLOW_SIZES)
    vae = load_sim_vae(cfg.vae, device=device)
    vae_model = _frozen(vae.model, device)
    vae_ref = WeightsRef(_absolute(cfg.vae), vae.sha256)
    pm_name = _absolute(cfg.posterior_mean)
    posterior_mean, _, pm_ref = _posterior_mean(pm_name, device)
    model = LatentFlow(LATENT_FLOW_SIZES[cfg.arch](vae_model.config.latent_channels)).to(device)
    convention, scale, flow_times = cfg.time_convention, cfg.time_scale, TIME_SAMPLINGS[cfg.time_sampling]

    def loss(net: nn.Module, batch: RestoreBatch, times: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            xhat = posterior_mean(batch.lq).float().clamp(0, 1)
            source = encode_latent(vae_model, xhat, batch, "sample")
            source = source + cfg.noise_std * batch.noise(source.shape[1:], "flow-source")
            # the target's posterior draw: a second stream of each image, independent of the source's
            target_draws = RestoreBatch(lq=batch.lq, image_ids=batch.image_ids, seeds=[s ^ 1 for s in batch.seeds])
            data = encode_latent(vae_model, batch.gt, target_draws, "sample")
        value = flow_matching_loss(lambda z, s: net(z, s * scale), data, source, flow_times(times), convention)
        return value, {"velocity_mse": value.item()}

    def export(folder: Path, ema: nn.Module, self_contained: bool) -> None:
        vae_used, pm_used = vae_ref, pm_ref
        if self_contained:
            folder.mkdir(parents=True, exist_ok=True)
            vae_used = WeightsRef(_copy_into(folder, cfg.vae, "vae"), vae_ref.sha256)
            pm_used = WeightsRef(_copy_into(folder, cfg.posterior_mean, "posterior_mean"), pm_ref.sha256)
        save_latent_pmrf(folder, ema, vae_used, pm_used, time_convention=convention, time_scale=scale,
                         noise_std=cfg.noise_std)

    knobs = {"steps": cfg.val_steps, "noise_std": cfg.noise_std, "latent_sample": "sample",
             "schedule": cfg.val_schedule, "precision": cfg.precision}
    spec = (f"velocity-mse/{convention}x{scale:g}/{time_sampling_spec(cfg.time_sampling)}/noise{cfg.noise_std:g}"
            "/latent-draws")
    return Task(model, loss, export, "latent-pmrf", knobs, spec)


RECIPES: dict[str, Callable[[Any, torch.device, int], Task]] = {
    "posterior-mean": posterior_mean_task,
    "vae": vae_task,
    "pmrf": pmrf_task,
    "latent-pmrf": latent_pmrf_task,
}


def build_task(recipe: str, cfg: TrainConfig, device: torch.device, size: int) -> Task:
    """The recipe's task, its trained module initialised from `cfg.seed` (every rank builds the same one)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return RECIPES[recipe](cfg, device, size)
