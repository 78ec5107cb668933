"""Sim-VAE: the attention-free convolutional VAE of Latent-PMRF, loaded from its published diffusers folder.

The published folder (`sienna223/Sim-VAE-c32`) holds `config.json` (`_class_name` "AutoencoderKLSim") and
`diffusion_pytorch_model.safetensors`. This module re-states the architecture in plain PyTorch with the same
parameter names, so the file loads as it is, without diffusers:

    encoder: conv_in -> down_blocks[i] (residual layers at block_out_channels[i], then a stride-2 conv to
             block_out_channels[i+1]; none after the last) -> mid_block (residual layers) -> conv_out (2 x latent)
    decoder: conv_in -> mid_block -> cast to the up blocks' weight dtype -> up_blocks[i] (layers_per_block + 1
             residual layers, then nearest x2 and a conv to the next width; none after the last) -> conv_out
    residual layer (pre_norm): x + conv2(silu(conv1(LayerNorm2d(x))))

Images are in [-1, 1]; latents carry no scaling or shift factor. Tensor layout is [B, C, H, W] throughout.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from lpmrf_bench.models.state_dicts import load_state_dict_strict
from lpmrf_bench.published import PUBLISHED, PublishedVAE  # noqa: F401 (re-exported)
from lpmrf_bench.published import VAE_CONFIG_FILE as CONFIG_FILE
from lpmrf_bench.published import VAE_WEIGHTS_FILE as WEIGHTS_FILE
from lpmrf_bench.weights import resolve, sha256_of

CLASS_NAME = "AutoencoderKLSim"
LOGVAR_RANGE = (-30.0, 20.0)  # the clamp of diffusers' DiagonalGaussianDistribution, which the release samples with


@dataclass(frozen=True)
class SimVAEConfig:
    """The constructor arguments of AutoencoderKLSim that change the network (names as in its config.json)."""

    in_channels: int = 3
    out_channels: int = 3
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    mid_block_out_channel: int = 512
    layers_per_block: int = 2
    layers_mid_block: int = 3
    latent_channels: int = 32
    norm_pos: str = "pre_norm"  # or "post_norm"
    norm_type: str = "layer_norm"  # or "group_norm"
    upsample_method: str = "interpolate"  # nearest x2 + conv; or "pixel_shuffle"
    quant_conv: bool = False  # diffusers-style 1x1 quant/post-quant convs; set when the weight file has them

    def __post_init__(self) -> None:
        if self.block_out_channels[-1] != self.mid_block_out_channel:
            raise ValueError(
                f"Sim-VAE needs block_out_channels[-1] == mid_block_out_channel "
                f"(got {self.block_out_channels[-1]} and {self.mid_block_out_channel})"
            )
        for name, value, allowed in (
            ("norm_pos", self.norm_pos, ("pre_norm", "post_norm")),
            ("norm_type", self.norm_type, ("layer_norm", "group_norm")),
            ("upsample_method", self.upsample_method, ("interpolate", "pixel_shuffle")),
        ):
            if value not in allowed:
                raise ValueError(f"Sim-VAE {name} must be one of {allowed}, got {value!r}")

    @property
    def downscale(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @classmethod
    def from_diffusers(cls, config: dict[str, Any], where: str = "config.json") -> SimVAEConfig:
        """Read a published `config.json`, refusing block types and latent scalings this module does not implement."""
        if config.get("_class_name", CLASS_NAME) != CLASS_NAME:
            raise ValueError(f"{where}: _class_name is {config['_class_name']!r}, expected {CLASS_NAME!r}")
        expected_types = {
            "down_block_types": "EncoderBlock2D",
            "up_block_types": "DecoderBlock2D",
        }
        for key, kind in expected_types.items():
            if key in config and any(t != kind for t in config[key]):
                raise ValueError(f"{where}: {key} must all be {kind!r}, got {config[key]}")
        if config.get("mid_block_type", "Block2D") != "Block2D":
            raise ValueError(f"{where}: mid_block_type must be 'Block2D', got {config['mid_block_type']!r}")
        for key in ("scaling_factor", "shift_factor"):
            if config.get(key) not in (None, 1.0, 0.0):
                raise ValueError(f"{where}: {key}={config[key]} is not supported (Sim-VAE latents are unscaled)")
        fields = {f for f in cls.__dataclass_fields__ if f != "quant_conv"}
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.items() if k in fields}
        if "down_block_types" in config and len(config["down_block_types"]) != len(kwargs.get("block_out_channels", ())):
            raise ValueError(f"{where}: down_block_types and block_out_channels differ in length")
        return cls(**kwargs)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a [B, C, H, W] tensor (eps 1e-6, as published)."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _norm(channels: int, norm_type: str) -> nn.Module:
    if norm_type == "layer_norm":
        return LayerNorm2d(channels)
    return nn.GroupNorm(32, channels, eps=1e-6)


class ResnetBlock2D(nn.Module):
    def __init__(self, channels: int, norm_pos: str, norm_type: str):
        super().__init__()
        self.norm_pos = norm_pos
        self.norm = _norm(channels, norm_type)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x) if self.norm_pos == "pre_norm" else x
        out = x + self.conv2(F.silu(self.conv1(h)))
        return self.norm(out) if self.norm_pos == "post_norm" else out


class Downsample2D(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, c_in: int, c_out: int, method: str):
        super().__init__()
        self.method = method
        self.conv = nn.Conv2d(c_in, c_out * (4 if method == "pixel_shuffle" else 1), 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "interpolate":
            return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return F.pixel_shuffle(self.conv(x), 2)


class Block2D(nn.Module):
    """`num_layers` residual layers at one width: the mid block ("Block2D") and the body of the others."""

    def __init__(self, channels: int, num_layers: int, cfg: SimVAEConfig):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock2D(channels, cfg.norm_pos, cfg.norm_type) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        return x


class EncoderBlock2D(Block2D):
    """Residual layers, then a stride-2 conv to `c_out` (None: the last block, which keeps its size)."""

    def __init__(self, c_in: int, c_out: int | None, num_layers: int, cfg: SimVAEConfig):
        super().__init__(c_in, num_layers, cfg)
        self.downsampler = Downsample2D(c_in, c_out) if c_out is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return x if self.downsampler is None else self.downsampler(x)


class DecoderBlock2D(Block2D):
    """Residual layers, then nearest x2 + conv to `c_out` (None: the last block, which keeps its size)."""

    def __init__(self, c_in: int, c_out: int | None, num_layers: int, cfg: SimVAEConfig):
        super().__init__(c_in, num_layers, cfg)
        self.upsampler = Upsample2D(c_in, c_out, cfg.upsample_method) if c_out is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        return x if self.upsampler is None else self.upsampler(x)


def _next(widths: tuple[int, ...], i: int) -> int | None:
    return widths[i + 1] if i + 1 < len(widths) else None


class Encoder(nn.Module):
    def __init__(self, cfg: SimVAEConfig):
        super().__init__()
        widths = cfg.block_out_channels
        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            EncoderBlock2D(w, _next(widths, i), cfg.layers_per_block, cfg) for i, w in enumerate(widths)
        )
        self.mid_block = Block2D(cfg.mid_block_out_channel, cfg.layers_mid_block, cfg)
        self.conv_out = nn.Conv2d(widths[-1], 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        return self.conv_out(self.mid_block(x))


class Decoder(nn.Module):
    def __init__(self, cfg: SimVAEConfig):
        super().__init__()
        widths = cfg.block_out_channels[::-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, cfg.mid_block_out_channel, 3, padding=1)
        self.mid_block = Block2D(cfg.mid_block_out_channel, cfg.layers_mid_block, cfg)
        self.up_blocks = nn.ModuleList(
            DecoderBlock2D(w, _next(widths, i), cfg.layers_per_block + 1, cfg) for i, w in enumerate(widths)
        )
        self.conv_out = nn.Conv2d(widths[-1], cfg.out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        # As published (vae.py Decoder.forward): the mid block's output is cast to the up blocks' weight dtype.
        # A no-op in fp32; under bf16 autocast it keeps the up blocks' residual stream in fp32.
        x = x.to(next(iter(self.up_blocks.parameters())).dtype)
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(x)


class SimVAE(nn.Module):
    """Encoder/decoder pair; images [B, 3, H, W] in [-1, 1] with H, W multiples of `config.downscale`."""

    def __init__(self, config: SimVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        if config.quant_conv:
            c = config.latent_channels
            self.quant_conv = nn.Conv2d(2 * c, 2 * c, 1)
            self.post_quant_conv = nn.Conv2d(c, c, 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's (mean, logvar), each [B, latent_channels, H/8, W/8]; logvar clamped as diffusers does."""
        f = self.config.downscale
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"Sim-VAE input sides must be multiples of {f}, got {tuple(x.shape[-2:])}")
        moments = self.encoder(x)
        if self.config.quant_conv:
            moments = self.quant_conv(moments)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    @staticmethod
    def sample(mean: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """A posterior draw with the caller's noise, so the draw is seeded by whoever owns the randomness."""
        return mean + torch.exp(0.5 * logvar) * noise

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.config.quant_conv:
            z = self.post_quant_conv(z)
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the posterior mode."""
        return self.decode(self.encode(x)[0])


def _build(
    config: dict[str, Any], state: dict[str, torch.Tensor], config_where: str, weights_path: Path, device: torch.device | str
) -> SimVAE:
    cfg = SimVAEConfig.from_diffusers(config, config_where)
    if "quant_conv.weight" in state:
        cfg = SimVAEConfig(**{**cfg.__dict__, "quant_conv": True})
    model = SimVAE(cfg)
    load_state_dict_strict(model, state, f"{weights_path} (with {config_where})")
    return model.to(device).eval().requires_grad_(False)




@dataclass(frozen=True)
class LoadedVAE:
    """The network plus the identity of its weights (name and sha256), which Latent-PMRF checkpoints record."""

    model: SimVAE
    name: str
    sha256: str


def load_sim_vae(
    spec: str | os.PathLike = "sim-vae-c32", weights_dir: str | os.PathLike | None = None, device: torch.device | str = "cpu"
) -> LoadedVAE:
    """Load by published name (through the cache / hub) or from a local folder in the published layout."""
    if str(spec) in PUBLISHED:
        pub = PUBLISHED[str(spec)]
        config_path = resolve(pub.config, weights_dir=weights_dir)
        weights_path = resolve(pub.weights, weights_dir=weights_dir)
        name = pub.name
    else:
        folder = Path(spec).expanduser()
        config_path, weights_path, name = folder / CONFIG_FILE, folder / WEIGHTS_FILE, str(folder)
        for path in (config_path, weights_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} does not exist: give a published Sim-VAE name ({', '.join(PUBLISHED)}) or a folder "
                    f"holding {CONFIG_FILE} and {WEIGHTS_FILE} (the layout of huggingface.co/sienna223/Sim-VAE-c32)"
                )
    model = _build(json.loads(Path(config_path).read_text()), load_file(str(weights_path)), str(config_path), Path(weights_path), device)
    return LoadedVAE(model, name, sha256_of(Path(weights_path)))
