"""PMRF's networks and every published way their weights come: loaded as they are, never converted first.

- Hugging Face folder (`ohayonguy/PMRF_blind_face_image_restoration`): `config.json` holds the training
  module's constructor kwargs, `model.safetensors` its whole state dict: `model.*` is the HDiT flow,
  `mmse_model.*` the SwinIR posterior mean, anything else (FID/IS Inception nets) is ignored.
- Lightning `.ckpt`: `state_dict` and `hyper_parameters` as above, plus `ema.shadow_params`: the flow's EMA
  weights in `model.parameters()` order. The EMA weights are the ones evaluated (as PMRF's inference does).
- DifFace's SwinIR `.pth`: `params_ema`, `params`, `state_dict` or a bare dict, `module.`/`model.` prefixes.
- Our checkpoint folder (`lpmrf_bench.models.checkpoint`), with the same `model.`/`mmse_model.` keys; a
  posterior mean alone (`lpmrf-bench train posterior-mean`) is our folder of kind "posterior-mean", bare SwinIR keys.
Missing, unexpected or mis-shaped keys are one error that lists them (`state_dicts.load_state_dict_strict`).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from lpmrf_bench.models.archs import build_arch, config_fields
from lpmrf_bench.models.checkpoint import CheckpointError, is_checkpoint, load_checkpoint, save_checkpoint
from lpmrf_bench.models.state_dicts import load_state_dict_strict, read_torch_file
from lpmrf_bench.models.sampler import CONVENTIONS
from lpmrf_bench.published import DIFFACE_SWINIR, HF_REPO, PMRF_HF_CONFIG, PMRF_HF_WEIGHTS  # noqa: F401 (re-exported)
from lpmrf_bench.weights import resolve

log = logging.getLogger(__name__)

FLOW_PREFIX, MMSE_PREFIX = "model.", "mmse_model."
POSTERIOR_MEAN_KIND = "posterior-mean"


@dataclass(frozen=True)
class PMRFSettings:
    """What a PMRF weight set needs besides tensors. `*_fields` rebuild sizes that are not registered."""

    flow_arch: str = "hdit_ImageNet256Sp4"
    mmse_arch: str = "swinir_L"
    noise_std: float = 0.1
    eps: float = 0.0  # PMRF's time offset: t_i = eps + (1 - eps) i / K
    time_convention: str = "t"
    time_scale: float = 1.0  # network input = time * time_scale
    input_size: int | None = 512
    flow_fields: dict[str, Any] | None = field(default=None, compare=False)
    mmse_fields: dict[str, Any] | None = field(default=None, compare=False)


def settings_from_hparams(hparams: dict[str, Any], source: str) -> PMRFSettings:
    """Read PMRF's training-module kwargs by key; extra keys are fine, a non-PMRF stage is an error."""
    stage = hparams.get("stage", "flow")
    if stage != "flow" or hparams.get("conditional", False):
        raise CheckpointError(
            f"{source}: stage={stage!r}, conditional={hparams.get('conditional')!r} is not a PMRF flow model "
            f"(need stage 'flow', conditional false); only the posterior-mean-sourced PMRF flow is supported"
        )
    if not hparams.get("arch") or not hparams.get("mmse_model_arch"):
        raise CheckpointError(f"{source}: needs 'arch' and 'mmse_model_arch' (e.g. hdit_ImageNet256Sp4, swinir_L)")
    return PMRFSettings(
        flow_arch=hparams["arch"],
        mmse_arch=hparams["mmse_model_arch"],
        noise_std=float(hparams.get("mmse_noise_std", 0.1)),
        eps=float(hparams.get("eps", 0.0) or 0.0),
    )


def settings_from_config(config: dict[str, Any], source: str) -> PMRFSettings:
    """Read our checkpoint config (see `checkpoint_config`)."""
    try:
        flow, mmse = config["flow"], config["posterior_mean"]
        settings = PMRFSettings(
            flow_arch=flow["arch"], flow_fields=flow.get("fields"),
            mmse_arch=mmse["arch"], mmse_fields=mmse.get("fields"),
            noise_std=float(config.get("noise_std", 0.1)), eps=float(config.get("eps", 0.0)),
            time_convention=config["time_convention"], time_scale=float(config["time_scale"]),
            input_size=config.get("input_size"),
        )
    except KeyError as exc:
        raise CheckpointError(f"{source}: config lacks {exc}; it is not a PMRF checkpoint") from exc
    if settings.time_convention not in CONVENTIONS:
        raise CheckpointError(f"{source}: time_convention must be one of {CONVENTIONS}")
    return settings


class PMRFNetworks(nn.Module):
    """The flow (`model`) and the posterior-mean predictor (`mmse_model`), named as in the published files."""

    def __init__(self, settings: PMRFSettings):
        super().__init__()
        self.settings = settings
        self.model = build_arch(settings.flow_arch, settings.flow_fields)
        self.mmse_model = build_arch(settings.mmse_arch, settings.mmse_fields)

    def posterior_mean(self, y: torch.Tensor) -> torch.Tensor:
        return self.mmse_model(y).clamp(0, 1)

    def velocity(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        return self.model(x, time * self.settings.time_scale)


def checkpoint_config(nets: PMRFNetworks, depends_on: tuple[dict[str, str], ...] = ()) -> dict[str, Any]:
    """Our checkpoint config for `nets`; `depends_on` lists {"name", "sha256"} of the files it was built from."""
    s = nets.settings
    return {
        "kind": "pmrf",
        "flow": {"arch": s.flow_arch, "fields": config_fields(nets.model.config)},
        "posterior_mean": {"arch": s.mmse_arch, "fields": config_fields(nets.mmse_model.config)},
        "noise_std": s.noise_std,
        "eps": s.eps,
        "time_convention": s.time_convention,
        "time_scale": s.time_scale,
        "input_size": s.input_size,
        "depends_on": [dict(d) for d in depends_on],
    }


def save_pmrf(folder: str | Path, nets: PMRFNetworks, depends_on: tuple[dict[str, str], ...] = ()) -> Path:
    """Write `nets` in our checkpoint format, keys as in the published files (`model.*`, `mmse_model.*`)."""
    return save_checkpoint(folder, nets.state_dict(), checkpoint_config(nets, depends_on))


def save_posterior_mean(folder: str | Path, model: nn.Module, arch: str, input_size: int | None) -> Path:
    """Write a posterior-mean network alone (bare SwinIR keys) in our format; `load_posterior_mean` reads it."""
    config = {"kind": POSTERIOR_MEAN_KIND, "posterior_mean": {"arch": arch, "fields": config_fields(model.config)},
              "input_size": input_size}
    return save_checkpoint(folder, model.state_dict(), config)


def _subset(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _networks_from_state(settings: PMRFSettings, state: dict[str, torch.Tensor], source: str) -> PMRFNetworks:
    nets = PMRFNetworks(settings)
    load_state_dict_strict(nets.model, _subset(state, FLOW_PREFIX), f"{source} [{FLOW_PREFIX}*]")
    load_state_dict_strict(nets.mmse_model, _subset(state, MMSE_PREFIX), f"{source} [{MMSE_PREFIX}*]")
    return nets.eval()


def load_hf_files(config_path: Path, weights_path: Path) -> PMRFNetworks:
    """The Hugging Face layout: training-module kwargs + the whole module's safetensors."""
    settings = settings_from_hparams(json.loads(Path(config_path).read_text()), str(config_path))
    return _networks_from_state(settings, load_file(str(weights_path)), str(weights_path))


def apply_ema(module: nn.Module, ema: dict[str, Any], source: str) -> None:
    """Copy torch_ema's `shadow_params` (a list in `module.parameters()` order) into the module."""
    shadow = ema.get("shadow_params") if isinstance(ema, dict) else None
    params = list(module.parameters())
    if shadow is None or len(shadow) != len(params):
        got = "no shadow_params" if shadow is None else f"{len(shadow)} shadow params"
        raise CheckpointError(f"{source}: 'ema' has {got}, the flow network has {len(params)} parameters")
    bad = [f"#{i} {tuple(s.shape)} (expected {tuple(p.shape)})" for i, (s, p) in enumerate(zip(shadow, params))
           if s.shape != p.shape]
    if bad:
        raise CheckpointError(
            f"{source}: EMA does not match the flow network, {len(bad)} shape mismatches: {', '.join(bad[:10])}"
        )
    with torch.no_grad():
        for s, p in zip(shadow, params):
            p.copy_(s)


def load_lightning(path: Path) -> PMRFNetworks:
    """A PMRF Lightning checkpoint; the flow gets the EMA weights when the file has them."""
    ckpt = read_torch_file(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (needs 'state_dict' and 'hyper_parameters')")
    settings = settings_from_hparams(dict(ckpt["hyper_parameters"]), str(path))
    nets = _networks_from_state(settings, ckpt["state_dict"], str(path))
    if "ema" in ckpt:
        apply_ema(nets.model, ckpt["ema"], str(path))
    else:
        log.warning("%s has no 'ema' entry: evaluating the raw training weights", path)
    return nets


def load_ours(folder: Path) -> PMRFNetworks:
    state, config = load_checkpoint(folder)
    return _networks_from_state(settings_from_config(config, str(folder)), state, str(folder))


def swinir_state_from_pth(obj: Any, source: str) -> dict[str, torch.Tensor]:
    """DifFace/BasicSR conventions: pick `params_ema` > `params` > `state_dict` > the dict itself; strip prefixes."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{source} holds a {type(obj).__name__}, not a state dict")
    state = next((obj[k] for k in ("params_ema", "params", "state_dict") if k in obj), obj)
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "model."):
            key = key.removeprefix(prefix)
        out[key] = value
    return out


def load_pmrf(weights: str | None, weights_dir: str | None = None) -> PMRFNetworks:
    """Both networks from `weights`: None/"official" (the HF repo, resolved through the cache), an HF-layout
    folder, our checkpoint folder, or a Lightning `.ckpt`. Returned on the CPU in eval mode."""
    if weights in (None, "official"):
        config = resolve(PMRF_HF_CONFIG, weights_dir=weights_dir)
        return load_hf_files(config, resolve(PMRF_HF_WEIGHTS, weights_dir=weights_dir))
    path = Path(weights).expanduser()
    if path.is_dir():
        if is_checkpoint(path):
            return load_ours(path)
        if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
            return load_hf_files(path / "config.json", path / "model.safetensors")
    elif path.is_file() and path.suffix == ".ckpt":
        return load_lightning(path)
    raise CheckpointError(
        f"PMRF weights {str(path)!r} not recognised: give 'official', a folder with config.json + "
        f"model.safetensors (Hugging Face layout or ours), or a Lightning .ckpt"
    )


def posterior_mean_path(weights: str | None, weights_dir: str | None = None) -> Path:
    """The file or folder `load_posterior_mean` reads for `weights` (None/"official" resolved through the cache)."""
    if weights in (None, "official"):
        return resolve(DIFFACE_SWINIR, weights_dir=weights_dir)
    return Path(weights).expanduser()


def load_posterior_mean(weights: str | None, weights_dir: str | None = None) -> tuple[nn.Module, int | None]:
    """The SwinIR posterior-mean network alone and the input size it expects: None/"official" = DifFace's
    `swinir_restoration512_L1.pth`; a `.pth`/`.pt` in DifFace form (SwinIR-L); our posterior-mean folder; or any
    PMRF weight set (its `mmse_model`)."""
    path = posterior_mean_path(weights, weights_dir)
    if path.is_dir() and is_checkpoint(path):
        state, config = load_checkpoint(path)
        if config.get("kind") == POSTERIOR_MEAN_KIND:
            try:
                arch = config["posterior_mean"]
                model = build_arch(arch["arch"], arch["fields"])
            except (KeyError, TypeError) as exc:
                raise CheckpointError(f"{path}: config lacks posterior_mean.{exc}") from exc
            load_state_dict_strict(model, state, path / "model.safetensors")
            return model.eval(), config.get("input_size")
    if path.is_file() and path.suffix in (".pth", ".pt"):
        state = swinir_state_from_pth(read_torch_file(path), str(path))  # a bad file fails before the build
        model = build_arch("swinir_L")
        load_state_dict_strict(model, state, str(path))
        return model.eval(), PMRFSettings().input_size
    nets = load_pmrf(str(path), weights_dir)
    return nets.mmse_model, nets.settings.input_size
