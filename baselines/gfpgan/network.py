"""GFPGAN v1.3/v1.4 "clean": a U-Net encoder whose features steer a StyleGAN2 decoder through SFT.

Restated from TencentARC/GFPGAN `gfpgan/archs/gfpganv1_clean_arch.py` and `stylegan2_clean_arch.py` (no custom
CUDA ops), fixed to the released configuration: `sft_half=True`, `input_is_latent=True`, `different_w=True`.
Parameter names, shapes and registration order are the published ones, so `GFPGANv1.3.pth` / `GFPGANv1.4.pth`
load strictly. Three published parts never reach the output of the published inference and exist only so those
files load: the encoder's `toRGB` heads (training losses; `return_rgb=False`), the decoder's mapping MLP
`style_mlp` (the encoder emits latents directly) and its stored `noises` (`randomize_noise=True` draws fresh
noise instead). The decoder noise is an explicit input here: one [B, 1, h, w] tensor per style conv, in the
order of `noise_shapes`, so the caller decides where randomness comes from.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GFPGANConfig:
    out_size: int = 512
    num_style_feat: int = 512
    channel_multiplier: int = 2
    num_mlp: int = 8
    narrow: float = 1.0

    @property
    def log_size(self) -> int:
        return int(math.log(self.out_size, 2))


GFPGAN_CONFIGS = {
    "gfpgan_v1_clean": GFPGANConfig(),  # v1.3 and v1.4 (GFPGANer(arch="clean", channel_multiplier=2))
    "gfpgan_tiny": GFPGANConfig(out_size=32, num_style_feat=16, channel_multiplier=2, num_mlp=2, narrow=1 / 16),
}


def stylegan_channels(channel_multiplier: int, narrow: float) -> dict[int, int]:
    """Channels per resolution, StyleGAN2's table; the U-Net uses it with half the narrow ratio."""
    return {4: int(512 * narrow), 8: int(512 * narrow), 16: int(512 * narrow), 32: int(512 * narrow),
            64: int(256 * channel_multiplier * narrow), 128: int(128 * channel_multiplier * narrow),
            256: int(64 * channel_multiplier * narrow), 512: int(32 * channel_multiplier * narrow),
            1024: int(16 * channel_multiplier * narrow)}


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear resize by `factor` (2 or 0.5), as every resampling in the published network."""
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class ModulatedConv2d(nn.Module):
    """StyleGAN2's convolution whose weight is scaled per sample by the style (and demodulated)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, num_style_feat: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.out_channels, self.kernel_size = out_channels, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.modulation = nn.Linear(num_style_feat, in_channels)
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
                                   / math.sqrt(in_channels * kernel_size**2))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        weight = self.weight * self.modulation(style).view(b, 1, c, 1, 1)  # [b, out, in, k, k]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(b, self.out_channels, 1, 1, 1)
        weight = weight.view(b * self.out_channels, c, self.kernel_size, self.kernel_size)
        if self.upsample:
            x = resize(x, 2)
        h, w = x.shape[-2:]
        out = F.conv2d(x.reshape(1, b * c, h, w), weight, padding=self.kernel_size // 2, groups=b)
        return out.view(b, self.out_channels, *out.shape[2:])


class StyleConv(nn.Module):
    """Modulated 3x3 conv, then the noise injection point (`weight` scales the noise), bias, leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, num_style_feat: int, upsample: bool = False):
        super().__init__()
        self.modulated_conv = ModulatedConv2d(in_channels, out_channels, 3, num_style_feat, upsample=upsample)
        self.weight = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        out = self.modulated_conv(x, style) * 2**0.5
        return lrelu(out + self.weight * noise + self.bias)


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, num_style_feat: int, upsample: bool = True):
        super().__init__()
        self.upsample = upsample
        self.modulated_conv = ModulatedConv2d(in_channels, 3, 1, num_style_feat, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.modulated_conv(x, style) + self.bias
        if skip is None:
            return out
        return out + (resize(skip, 2) if self.upsample else skip)


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, channels, size, size))


class StyleGAN2DecoderCSFT(nn.Module):
    """StyleGAN2 generator fed one latent per layer, with SFT (scale, shift) applied to half the channels of the
    first conv of every resolution (`StyleGAN2GeneratorCSFT` with `sft_half=True`, `input_is_latent=True`)."""

    def __init__(self, config: GFPGANConfig):
        super().__init__()
        f, channels = config.num_style_feat, stylegan_channels(config.channel_multiplier, config.narrow)
        mlp: list[nn.Module] = [nn.Identity()]  # published: NormStyleCode (parameter-free); keeps the key indices
        for _ in range(config.num_mlp):
            mlp += [nn.Linear(f, f), nn.LeakyReLU(0.2)]
        self.style_mlp = nn.Sequential(*mlp)  # unused: the encoder emits latents (input_is_latent=True)
        self.constant_input = ConstantInput(channels[4], 4)
        self.style_conv1 = StyleConv(channels[4], channels[4], f)
        self.to_rgb1 = ToRGB(channels[4], f, upsample=False)
        self.style_convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()  # unused: randomize_noise=True draws fresh noise on every call
        for i, shape in enumerate(self.noise_shapes(config)):
            self.noises.register_buffer(f"noise{i}", torch.zeros(1, *shape))
        in_channels = channels[4]
        for level in range(3, config.log_size + 1):
            out_channels = channels[2**level]
            self.style_convs.append(StyleConv(in_channels, out_channels, f, upsample=True))
            self.style_convs.append(StyleConv(out_channels, out_channels, f))
            self.to_rgbs.append(ToRGB(out_channels, f))
            in_channels = out_channels

    @staticmethod
    def noise_shapes(config: GFPGANConfig) -> list[tuple[int, int, int]]:
        """(1, h, w) of each style conv's noise: 4x4, then two per resolution 8 .. out_size."""
        return [(1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(2 * (config.log_size - 2) + 1)]

    def forward(self, latent: torch.Tensor, conditions: Sequence[tuple[torch.Tensor, torch.Tensor]],
                noise: Sequence[torch.Tensor]) -> torch.Tensor:
        out = self.constant_input.weight.repeat(latent.shape[0], 1, 1, 1)
        out = self.style_conv1(out, latent[:, 0], noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        convs = zip(self.style_convs[::2], self.style_convs[1::2], self.to_rgbs, conditions)
        for level, (conv1, conv2, to_rgb, (scale, shift)) in enumerate(convs):
            i = 2 * level + 1
            out = conv1(out, latent[:, i], noise[i])
            same, sft = torch.split(out, out.shape[1] // 2, dim=1)
            out = conv2(torch.cat([same, sft * scale + shift], dim=1), latent[:, i + 1], noise[i + 1])
            skip = to_rgb(out, latent[:, i + 2], skip)
        return skip


class ResBlock(nn.Module):
    """Residual block that halves (`factor` 0.5) or doubles (2) the resolution by bilinear resizing."""

    def __init__(self, in_channels: int, out_channels: int, factor: float):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = lrelu(self.conv2(resize(lrelu(self.conv1(x)), self.factor)))
        return out + self.skip(resize(x, self.factor))


def sft_branch(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.LeakyReLU(0.2),
                         nn.Conv2d(channels, channels, 3, 1, 1))


class GFPGANv1Clean(nn.Module):
    """`forward(x, noise)`: x in [-1, 1], [B, 3, out_size, out_size]; returns the restored image in ~[-1, 1]."""

    def __init__(self, config: GFPGANConfig = GFPGAN_CONFIGS["gfpgan_v1_clean"]):
        super().__init__()
        self.config = config
        channels = stylegan_channels(config.channel_multiplier, config.narrow / 2)
        levels = range(3, config.log_size + 1)
        self.conv_body_first = nn.Conv2d(3, channels[config.out_size], 1)
        self.conv_body_down = nn.ModuleList(
            ResBlock(channels[2**i], channels[2 ** (i - 1)], 0.5) for i in range(config.log_size, 2, -1))
        self.final_conv = nn.Conv2d(channels[4], channels[4], 3, 1, 1)
        self.conv_body_up = nn.ModuleList(ResBlock(channels[2 ** (i - 1)], channels[2**i], 2) for i in levels)
        self.toRGB = nn.ModuleList(nn.Conv2d(channels[2**i], 3, 1) for i in levels)  # unused (return_rgb=False)
        self.final_linear = nn.Linear(channels[4] * 16, (config.log_size * 2 - 2) * config.num_style_feat)
        self.stylegan_decoder = StyleGAN2DecoderCSFT(config)
        self.condition_scale = nn.ModuleList(sft_branch(channels[2**i]) for i in levels)
        self.condition_shift = nn.ModuleList(sft_branch(channels[2**i]) for i in levels)

    def noise_shapes(self) -> list[tuple[int, int, int]]:
        return self.stylegan_decoder.noise_shapes(self.config)

    def forward(self, x: torch.Tensor, noise: Sequence[torch.Tensor]) -> torch.Tensor:
        feat = lrelu(self.conv_body_first(x))
        skips = []
        for block in self.conv_body_down:
            feat = block(feat)
            skips.insert(0, feat)
        feat = lrelu(self.final_conv(feat))
        latent = self.final_linear(feat.reshape(feat.shape[0], -1)).view(feat.shape[0], -1, self.config.num_style_feat)
        conditions = []
        for skip, up, scale, shift in zip(skips, self.conv_body_up, self.condition_scale, self.condition_shift):
            feat = up(feat + skip)
            conditions.append((scale(feat), shift(feat)))
        return self.stylegan_decoder(latent, conditions, noise)
