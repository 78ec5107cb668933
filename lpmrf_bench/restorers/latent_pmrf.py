"""Latent-PMRF and the Sim-VAE round trip, as restorers.

Latent-PMRF (Luo et al., 2025) is PMRF in a VAE's latent space:

    x̂ = clip(posterior_mean(y), 0, 1)                          shared with `pmrf` through `RestoreBatch.cache`
    z0 = draw from VAE.encode(2 x̂ - 1) + noise_std * eps      posterior draw: `batch.noise(.., "vae-posterior")`
                                                                eps: `batch.noise(.., "flow-source")`
    z1 = K Euler steps of the flow from z0, in the checkpoint's time convention
    out = clip((VAE.decode(z1) + 1) / 2, 0, 1)

The flow weights were never published, so `--weights latent-pmrf=DIR` names a checkpoint folder of ours
(`models.checkpoint`) whose config records the flow architecture, `time_convention`, `time_scale`, the training
`noise_std` (the knob decides; sampling at another value is said once per value), and the VAE and posterior-mean
weights the flow was trained with, by name and sha256 (`latent_pmrf_config`). A recorded name is a published name
or a path (relative paths are inside DIR, so one folder can carry all three). Weights whose
sha256 differs from the record are refused: a flow only makes sense on the latents it was trained on.

`vae-recon` is the VAE alone (encode -> decode of the ground truth when the set has one, else of the LQ): the
fidelity ceiling of any method in that latent space.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lpmrf_bench.embedded_weights import local_weights
from lpmrf_bench.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lpmrf_bench.models.state_dicts import load_state_dict_strict
from lpmrf_bench.models.latent_flow import LatentFlow, LatentFlowConfig
from lpmrf_bench.models.pmrf_loading import load_posterior_mean, posterior_mean_path
from lpmrf_bench.models.sampler import CONVENTIONS, sample_euler, schedule_grid
from lpmrf_bench.models.sim_vae import PUBLISHED, SimVAE, load_sim_vae
from lpmrf_bench.restorers.base import RestoreBatch, RestoreInputError, TrainingNoise
from lpmrf_bench.restorers.builtin import DEFAULT_VAE, LATENT_PMRF, LATENT_SAMPLE, VAE_RECON  # noqa: F401 (re-exported)
from lpmrf_bench.restorers.pmrf import autocast, cached_posterior_mean, check_size
from lpmrf_bench.weights import WeightsMissingError, sha256_of

KIND = "latent-pmrf"
FLOW_ARCH = "latent_flow"
NOT_PUBLISHED = (
    "Latent-PMRF's flow weights were never published (github.com/Luciennnnnnn/Latent-PMRF lists them as TODO). "
    "Train a flow with `lpmrf-bench train latent-pmrf` and pass its checkpoint folder: "
    "`--weights latent-pmrf=DIR`."
)


@dataclass(frozen=True)
class WeightsRef:
    """Which weights a flow was trained with: the name they were loaded by, and the sha256 of the file."""

    name: str
    sha256: str

    def describe(self) -> str:
        return f"{self.name!r} (sha256 {self.sha256[:16]})"


def latent_pmrf_config(
    flow: LatentFlow, vae: WeightsRef, posterior_mean: WeightsRef, time_convention: str = "sigma",
    time_scale: float = 1.0, noise_std: float = 0.1,
) -> dict[str, Any]:
    """The checkpoint config the restorer reads back (training writes it through `save_latent_pmrf`)."""
    if time_convention not in CONVENTIONS:
        raise ValueError(f"time_convention must be one of {CONVENTIONS}, got {time_convention!r}")
    return {
        "kind": KIND,
        "flow": {"arch": FLOW_ARCH, "fields": flow.config.to_dict()},
        "time_convention": time_convention,
        "time_scale": float(time_scale),
        "noise_std": float(noise_std),
        "vae": {"name": vae.name, "sha256": vae.sha256},
        "posterior_mean": {"name": posterior_mean.name, "sha256": posterior_mean.sha256},
    }


def save_latent_pmrf(folder: str | os.PathLike, flow: LatentFlow, vae: WeightsRef, posterior_mean: WeightsRef, **settings: Any) -> Path:
    """Write a flow checkpoint (model.safetensors + config.json) that `--weights latent-pmrf=DIR` loads."""
    return save_checkpoint(folder, flow.state_dict(), latent_pmrf_config(flow, vae, posterior_mean, **settings))


def encode_latent(vae: SimVAE, images: torch.Tensor, batch: RestoreBatch, how: str) -> torch.Tensor:
    """Latent of [0, 1] images: the posterior mode, or a draw from it seeded per image.

    The VAE always runs in float32, whatever `precision` says: the published Sim-VAE config sets
    `force_upcast: true`, which keeps diffusers' VAE in float32 when the rest runs in half precision.
    """
    mean, logvar = vae.encode(images.float() * 2 - 1)
    if how == "mode":
        return mean
    return SimVAE.sample(mean, logvar, batch.noise(mean.shape[1:], "vae-posterior"))


def decode_latent(vae: SimVAE, z: torch.Tensor) -> torch.Tensor:
    """[0, 1] images of latents, in float32 (see `encode_latent`)."""
    return ((vae.decode(z.float()) + 1) / 2).clamp(0, 1)


def check_vae_size(images: torch.Tensor, vae: SimVAE, image_ids: list[str] | tuple[str, ...], multiple: int = 1) -> None:
    """Refuse (per image, as the engine expects) sides the VAE and flow cannot downsample evenly."""
    m = vae.config.downscale * multiple
    h, w = images.shape[-2:]
    if h % m or w % m:
        raise RestoreInputError({i: f"Sim-VAE restorers need sides that are multiples of {m}, got {w}x{h}" for i in image_ids})


@dataclass
class LatentPMRFRestorer:
    flow: LatentFlow
    vae: SimVAE
    posterior_mean: nn.Module
    time_convention: str
    time_scale: float
    input_size: int | None = None  # the posterior mean's fixed input side, if it has one
    training_noise: TrainingNoise = field(default_factory=TrainingNoise)  # the σ_s the checkpoint records

    def velocity(self, z: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        return self.flow(z, time * self.time_scale)

    def __call__(self, batch: RestoreBatch, knobs: dict[str, Any]) -> torch.Tensor:
        check_size(batch.lq, self.input_size, KIND, batch.image_ids)
        check_vae_size(batch.lq, self.vae, batch.image_ids, 2 ** (len(self.flow.config.widths) - 1))
        self.training_noise.check(KIND, knobs["noise_std"])
        precision = knobs["precision"]
        with torch.no_grad():
            xhat = cached_posterior_mean(self.posterior_mean, batch, precision)
            z = encode_latent(self.vae, xhat, batch, knobs["latent_sample"])
            z = z + knobs["noise_std"] * batch.noise(z.shape[1:], "flow-source")
            grid = schedule_grid(knobs["schedule"], knobs["steps"], self.time_convention, device=z.device)
            with autocast(z.device, precision):
                z = sample_euler(self.velocity, z, grid)
            return decode_latent(self.vae, z)


def _resolve_recorded(name: str, folder: Path) -> str:
    """A recorded weights name: published names as they are, relative paths inside the checkpoint folder."""
    if name in PUBLISHED or name == "official" or Path(name).expanduser().is_absolute():
        return name
    return str(folder / name)


def _check_same(what: str, recorded: WeightsRef, in_use: WeightsRef, config_path: Path) -> None:
    if recorded.sha256 != in_use.sha256:
        raise CheckpointError(
            f"{config_path}: this flow was trained with {what} {recorded.describe()}, but the {what} in use is "
            f"{in_use.describe()}. A flow only works on the latents it was trained with: put the recorded file "
            f"in place, or retrain the flow with these weights."
        )


def posterior_mean_ref(name: str) -> WeightsRef:
    """Identity of posterior-mean weights as `load_posterior_mean` reads them (file, or folder's safetensors)."""
    path = posterior_mean_path(name)
    if path.is_dir():
        path = path / "model.safetensors"
    return WeightsRef(name, sha256_of(path))


def _recorded(config: dict[str, Any], key: str, config_path: Path) -> WeightsRef:
    try:
        return WeightsRef(str(config[key]["name"]), str(config[key]["sha256"]))
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{config_path}: needs {key} = {{name, sha256}} (the weights the flow was trained with)") from exc


def load_latent_pmrf_restorer(weights: str | None, device: torch.device) -> LatentPMRFRestorer:
    weights = local_weights(KIND, weights)
    if weights is None:
        raise WeightsMissingError(NOT_PUBLISHED)
    folder = Path(weights).expanduser()
    if not folder.is_dir():
        raise WeightsMissingError(f"{weights!r} is not a checkpoint folder. {NOT_PUBLISHED}")
    state, config = load_checkpoint(folder)
    config_path = folder / "config.json"
    if config.get("kind") != KIND or config.get("flow", {}).get("arch") != FLOW_ARCH:
        raise CheckpointError(f"{config_path} is a {config.get('kind')!r} checkpoint, not a {KIND} flow")
    convention = config.get("time_convention")
    if convention not in CONVENTIONS or "time_scale" not in config:
        raise CheckpointError(f"{config_path}: needs time_convention (one of {CONVENTIONS}) and time_scale")
    flow = LatentFlow(LatentFlowConfig.from_dict(config["flow"]["fields"]))
    load_state_dict_strict(flow, state, folder / "model.safetensors")

    vae_rec, pm_rec = _recorded(config, "vae", config_path), _recorded(config, "posterior_mean", config_path)
    vae = load_sim_vae(_resolve_recorded(vae_rec.name, folder), device=device)
    _check_same("VAE", vae_rec, WeightsRef(vae.name, vae.sha256), config_path)
    pm_name = _resolve_recorded(pm_rec.name, folder)
    _check_same("posterior mean", pm_rec, posterior_mean_ref(pm_name), config_path)
    if vae.model.config.latent_channels != flow.config.in_channels:
        raise CheckpointError(
            f"{config_path}: the flow has {flow.config.in_channels} channels, the VAE {vae_rec.name!r} "
            f"{vae.model.config.latent_channels}"
        )
    posterior_mean, input_size = load_posterior_mean(pm_name)
    return LatentPMRFRestorer(
        flow.to(device).eval().requires_grad_(False), vae.model, posterior_mean.to(device).eval(),
        convention, float(config["time_scale"]), input_size,
        TrainingNoise(float(config["noise_std"]) if "noise_std" in config else None),
    )


@dataclass
class VAEReconRestorer:
    vae: SimVAE

    def __call__(self, batch: RestoreBatch, knobs: dict[str, Any]) -> torch.Tensor:
        images = batch.gt if batch.gt is not None else batch.lq
        check_vae_size(images, self.vae, batch.image_ids)
        with torch.no_grad():
            z = encode_latent(self.vae, images, batch, knobs["latent_sample"])
            return decode_latent(self.vae, z)


def load_vae_recon_restorer(weights: str | None, device: torch.device) -> VAEReconRestorer:
    name = DEFAULT_VAE if weights in (None, "official") else local_weights("vae-recon", weights)
    return VAEReconRestorer(load_sim_vae(name, device=device).model)
