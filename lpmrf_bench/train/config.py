"""Training recipes' settings as typed dataclasses: defaults, then a TOML file, then `--set key=value`.

Every field of a recipe's config can be overridden; an unknown key or a value of the wrong type is refused with
the key named. The resolved config is written beside the checkpoints as TOML (`toml_text`), so it can be passed
back with `--config`. Tuples are written as TOML arrays and given on the command line comma-separated.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Fields that may change when a run resumes (they change how it runs, not what it computes).
RUNTIME_FIELDS = ("steps", "device", "compile", "progress", "log_every", "val_every", "checkpoint_every",
                  "keep_checkpoints", "workers")

LR_SCHEDULES = ("constant", "cosine")
TIME_SAMPLINGS = ("uniform", "logit-normal")  # the names of models.sampler.TIME_SAMPLINGS (kept torch-free)


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


@dataclass
class TrainConfig:
    """Settings every recipe shares. `batch_size` is the global batch (all ranks, all accumulation steps)."""

    data: str = "synthetic-faces:train"  # HQ images: a folder, or synthetic-faces[-N]:train
    degradation: str = "difface"  # the pipeline that makes LQ from HQ on the fly (scaled to the image size)
    val_data: str = ""  # a paired dataset spec; "" = the val split of synthetic-faces[-N] when training on it
    val_images: int = 16  # the first N images of val_data
    val_every: int = 1000  # 0 = no validation
    val_batch_size: int = 8
    val_metrics: tuple[str, ...] = ("psnr", "lpips", "fid", "fd_mobilenet")  # defaults that cannot run here are skipped with a note
    seed: int = 0
    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0  # linear warm-up of the learning rate, then `lr_schedule`
    lr_schedule: str = "constant"  # or cosine: from lr after the warm-up down to 0 at `steps`
    grad_clip: float = 0.0  # max global gradient norm; 0 = no clipping
    ema_decay: float = 0.999
    precision: str = "fp32"  # or bf16 (autocast)
    compile: bool = False  # torch.compile the trained network
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 1  # loss-log rows every N steps
    device: str = "auto"  # auto (cuda when available), cpu, cuda
    workers: int = 0  # processes rendering and degrading the next step's pairs (0 = inline)
    progress: bool = True

    def check(self) -> None:
        """Refuse values no run can use, naming the key."""
        for key in ("steps", "batch_size", "grad_accum", "val_images", "val_batch_size", "keep_checkpoints",
                    "log_every", "checkpoint_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        for key in ("val_every", "warmup_steps", "grad_clip", "lr", "weight_decay", "workers"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must not be negative, got {getattr(self, key)}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"precision must be fp32 or bf16, got {self.precision!r}")


@dataclass
class PosteriorMeanConfig(TrainConfig):
    arch: str = "swinir_L"
    loss: str = "mse"  # or l1
    lr: float = 2e-4

    def check(self) -> None:
        super().check()
        if self.loss not in ("mse", "l1"):
            raise ConfigError(f"loss must be mse or l1, got {self.loss!r}")


@dataclass
class VAEConfig(TrainConfig):
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    layers_mid_block: int = 3
    latent_channels: int = 32
    kl_weight: float = 1e-6
    lpips_weight: float = 0.05  # dropped, with a printed note, when the LPIPS weights are unavailable
    lr: float = 1e-4


@dataclass
class FlowConfig(TrainConfig):
    """What both flows share, with PMRF's published recipe as defaults (FACTS.md: AdamW 5e-4, wd 0.01, betas
    (0.9, 0.95), EMA 0.9999, no schedule); the source is the frozen posterior mean plus noise of `noise_std`."""

    posterior_mean: str = "official"  # weights: official (DifFace SwinIR-L), a .pth, or a posterior-mean export
    noise_std: float = 0.1
    time_sampling: str = "uniform"  # training times, stratified: uniform (as PMRF), or logit-normal (SD3)
    lr: float = 5e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    ema_decay: float = 0.9999
    val_steps: int = 25  # Euler steps of validation sampling

    def check(self) -> None:
        super().check()
        if self.time_sampling not in TIME_SAMPLINGS:
            raise ConfigError(f"time_sampling must be one of {', '.join(TIME_SAMPLINGS)}, got {self.time_sampling!r}")


@dataclass
class PMRFConfig(FlowConfig):
    arch: str = "hdit_ImageNet256Sp4"


@dataclass
class LatentPMRFConfig(FlowConfig):
    """The latent flow on a frozen posterior mean and a frozen VAE, in Latent-PMRF's sigma convention."""

    arch: str = "latent_flow"  # or latent_flow_tiny
    vae: str = "sim-vae-c32"  # a published Sim-VAE name or a folder in its layout (e.g. a `vae` export)
    time_convention: str = "sigma"
    time_scale: float = 1.0
    val_schedule: str = "flow-match"

    def check(self) -> None:
        super().check()
        if self.time_convention not in ("t", "sigma"):
            raise ConfigError(f"time_convention must be t or sigma, got {self.time_convention!r}")


def _types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(key: str, value: Any, kind: Any) -> Any:
    """`value` (from TOML or a command-line string) as the field's type, or a ConfigError naming `key`."""
    origin = typing.get_origin(kind)
    if origin is tuple:
        args = typing.get_args(kind)
        item = args[0]
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} takes a list, got {value!r}")
        if len(args) == 2 and args[1] is not Ellipsis and len(value) != len(args):
            raise ConfigError(f"{key} takes {len(args)} values, got {len(value)}")
        return tuple(_coerce(key, v, item) for v in value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key} takes true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ConfigError(f"{key} takes an {kind.__name__}, got {value!r}")
        try:
            return kind(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} takes a{'n' if kind is int else ''} {kind.__name__}, got {value!r}") from None
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} takes a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {kind}")


def apply(config: TrainConfig, values: dict[str, Any], where: str) -> TrainConfig:
    """A copy of `config` with `values` set; unknown keys and wrong types are refused (`where` says whence)."""
    kinds = _types(type(config))
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        hint = _did_you_mean(unknown[0], kinds)
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} for this recipe{hint}")
    try:
        coerced = {k: _coerce(k, v, kinds[k]) for k, v in values.items()}
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return dataclasses.replace(config, **coerced)


def _did_you_mean(key: str, known: dict[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; keys: {', '.join(sorted(known))}"


def parse_sets(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes key=value, got {item!r}")
        out[key.strip()] = value
    return out


def resolve(defaults: TrainConfig, file: Path | None, sets: dict[str, str]) -> TrainConfig:
    """Recipe defaults, then the TOML file's keys, then `--set` values; checked."""
    config = defaults
    if file is not None:
        try:
            values = tomllib.loads(Path(file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read it as TOML ({exc})") from None
        config = apply(config, values, str(file))
    config = apply(config, sets, "--set")
    config.check()
    return config


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def toml_text(config: TrainConfig, header: str) -> str:
    """The config as TOML text (flat keys; JSON's spelling of strings, numbers and arrays is valid TOML)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for key, value in to_dict(config).items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def changed_keys(old: dict[str, Any], new: TrainConfig) -> list[str]:
    """Keys whose values differ, other than those a resumed run may change (`RUNTIME_FIELDS`). A key the stored
    settings lack was added since that run began; it counts as its default, which keeps the old behaviour."""
    new_d, defaults = to_dict(new), to_dict(type(new)())
    return sorted(k for k in set(old) | set(new_d)
                  if k not in RUNTIME_FIELDS and old.get(k, defaults.get(k)) != new_d.get(k))


RECIPE_CONFIGS: dict[str, type[TrainConfig]] = {
    "posterior-mean": PosteriorMeanConfig,
    "vae": VAEConfig,
    "pmrf": PMRFConfig,
    "latent-pmrf": LatentPMRFConfig,
}
