"""The Latent-PMRF velocity network: a U-shaped transformer on the VAE latent (patch size 1).

Latent-PMRF's flow weights and training code were never released, so this is our own network in the design the
paper describes (and its authors' public LooUFormer code follows): levels of transformer blocks, neighborhood
attention on the fine levels and global attention at the bottom, a stride-2 conv between levels and
nearest x2 + conv with a learned lerp to the skip on the way up. Each block is

    x = x + Attention(AdaRMSNorm(x, c))      q, k, v from a 1x1 conv + depthwise 3x3 conv, axial RoPE
    x = x + FeedForward(AdaRMSNorm(x, c))    GEGLU whose input projection also has a depthwise 3x3 conv

with c = MappingNetwork(Linear(Fourier(time))). The network sees the time value its checkpoint records (t or
sigma, times `time_scale`); it does not know which convention it was trained in. Layout is [B, C, H, W], kept
channels-last in memory: oneDNN's depthwise convolutions run several times faster so on the CPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lpmrf_bench.models.hdit import AxialRoPE, FourierFeatures, MappingNetwork, apply_rotary, axial_positions
from lpmrf_bench.models.neighborhood import neighborhood_attention

ATTENTION_KINDS = ("neighborhood", "global")


@dataclass(frozen=True)
class LatentFlowConfig:
    """Architecture of the flow network; levels run from the latent resolution down (one entry per level)."""

    in_channels: int = 32
    widths: tuple[int, ...] = (256, 512, 1024)
    depths: tuple[int, ...] = (2, 2, 8)
    attention: tuple[str, ...] = ("neighborhood", "neighborhood", "global")
    head_dims: tuple[int, ...] = (64, 64, 64)
    kernel_sizes: tuple[int, ...] = (7, 7, 0)  # neighborhood side per level (unused at global levels)
    ff_mult: float = 3.0
    time_dim: int = 256
    fourier_std: float = 1.0
    mapping_depth: int = 2
    mapping_mult: float = 3.0

    def __post_init__(self) -> None:
        n = len(self.widths)
        for name in ("depths", "attention", "head_dims", "kernel_sizes"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"LatentFlowConfig.{name} needs one entry per level ({n}), got {getattr(self, name)}")
        for i, (width, head_dim, kind, k) in enumerate(zip(self.widths, self.head_dims, self.attention, self.kernel_sizes)):
            if kind not in ATTENTION_KINDS:
                raise ValueError(f"level {i}: attention must be one of {ATTENTION_KINDS}, got {kind!r}")
            if width % head_dim or head_dim % 8:
                raise ValueError(f"level {i}: width {width} must split into heads of {head_dim} (a multiple of 8)")
            if kind == "neighborhood" and (k < 1 or k % 2 == 0):
                raise ValueError(f"level {i}: a neighborhood needs an odd kernel size, got {k}")
        if self.time_dim % 2:
            raise ValueError(f"time_dim must be even, got {self.time_dim}")

    @classmethod
    def tiny(cls, in_channels: int = 4) -> LatentFlowConfig:
        """A two-level network of ~40k parameters for CPU tests (latent sides even and at least 4)."""
        return cls(
            in_channels, widths=(16, 32), depths=(1, 1), attention=("neighborhood", "global"), head_dims=(8, 8),
            kernel_sizes=(3, 0), ff_mult=2.0, time_dim=16, mapping_depth=1, mapping_mult=2.0,
        )

    @classmethod
    def small(cls, in_channels: int = 4) -> LatentFlowConfig:
        """The embedded 64 px latent flow (trained on CPU): two levels, 64 and 128 wide."""
        return cls(
            in_channels, widths=(64, 128), depths=(1, 2), attention=("neighborhood", "global"), head_dims=(16, 32),
            kernel_sizes=(3, 0), ff_mult=3.0, time_dim=64, mapping_depth=1, mapping_mult=2.0,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatentFlowConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown latent flow architecture keys {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _inner(dim: int, mult: float) -> int:
    """Hidden width of a feed-forward, rounded to a multiple of 64 (at least 64) for GPU-friendly shapes."""
    return max(64, round(dim * mult / 64) * 64)


class RMSNorm2d(nn.Module):
    """RMS norm over the channels of [B, C, H, W]; affine only when no condition modulates it."""

    def __init__(self, dim: int, affine: bool = True, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.rms_norm(x.movedim(1, -1).float(), (x.shape[1],), self.weight, self.eps)  # float32 statistics
        return y.to(x.dtype).movedim(-1, 1)


class AdaRMSNorm2d(nn.Module):
    """RMS norm whose per-channel scale is 1 + Linear(c): how the time condition enters every block."""

    def __init__(self, dim: int, cond_dim: int):
        super().__init__()
        self.norm = RMSNorm2d(dim, affine=False)
        self.linear = nn.Linear(cond_dim, dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * (1 + self.linear(cond)[:, :, None, None])


class ConvProjection(nn.Module):
    """1x1 conv then depthwise 3x3 conv: a pointwise projection that also sees its 3x3 neighbours."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.dwconv = nn.Conv2d(c_out, c_out, 3, padding=1, groups=c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dwconv(self.conv(x))


class Attention(nn.Module):
    def __init__(self, dim: int, head_dim: int, kind: str, kernel_size: int):
        super().__init__()
        self.heads, self.head_dim, self.kind, self.kernel_size = dim // head_dim, head_dim, kind, kernel_size
        self.qkv = ConvProjection(dim, 3 * dim)
        self.out = nn.Conv2d(dim, dim, 1)
        self.rope = AxialRoPE(head_dim // 2, self.heads)  # rotates half of each head: rows, then columns

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(x).view(b, 3, self.heads, self.head_dim, h, w).permute(1, 0, 2, 4, 5, 3)
        theta = self.rope(axial_positions(h, w, x.device)).movedim(-2, 0)  # [heads, H, W, head_dim // 4]
        q, k, v = apply_rotary(qkv[0], theta), apply_rotary(qkv[1], theta), qkv[2]  # [B, heads, H, W, d]
        if self.kind == "neighborhood":
            y = neighborhood_attention(q, k, v, self.kernel_size)
        else:
            y = F.scaled_dot_product_attention(*(t.flatten(2, 3) for t in (q, k, v))).view(b, self.heads, h, w, -1)
        return self.out(y.permute(0, 2, 3, 1, 4).reshape(b, h, w, c).permute(0, 3, 1, 2))  # channels-last


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: float):
        super().__init__()
        inner = _inner(dim, mult)
        self.proj_in = ConvProjection(dim, 2 * inner)
        self.proj_out = nn.Conv2d(inner, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj_in(x).chunk(2, dim=1)
        return self.proj_out(F.gelu(a) * gate)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, head_dim: int, kind: str, kernel_size: int, ff_mult: float, cond_dim: int):
        super().__init__()
        self.norm1 = AdaRMSNorm2d(dim, cond_dim)
        self.attn = Attention(dim, head_dim, kind, kernel_size)
        self.norm2 = AdaRMSNorm2d(dim, cond_dim)
        self.ff = FeedForward(dim, ff_mult)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x, cond))
        return x + self.ff(self.norm2(x, cond))


class Level(nn.ModuleList):
    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        for block in self:
            x = block(x, cond)
        return x


class Upsample(nn.Module):
    """Nearest x2 + 3x3 conv, then lerp towards it from the skip by a learned factor (starts at 0.5)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.fac = nn.Parameter(torch.full((1,), 0.5))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return torch.lerp(skip, up, self.fac.to(up.dtype))


class LatentFlow(nn.Module):
    """v(x, time): [B, C, H, W] latent and [B] times -> [B, C, H, W] velocity. H, W divisible by 2^(levels-1)."""

    def __init__(self, config: LatentFlowConfig):
        super().__init__()
        self.config = cfg = config
        self.time_emb = FourierFeatures(1, cfg.time_dim, cfg.fourier_std)  # random, fixed, saved with the weights
        self.time_in = nn.Linear(cfg.time_dim, cfg.time_dim, bias=False)
        self.mapping = MappingNetwork(cfg.mapping_depth, cfg.time_dim, _inner(cfg.time_dim, cfg.mapping_mult))

        def level(i: int, depth: int) -> Level:
            args = (cfg.widths[i], cfg.head_dims[i], cfg.attention[i], cfg.kernel_sizes[i], cfg.ff_mult, cfg.time_dim)
            return Level(TransformerBlock(*args) for _ in range(depth))

        n = len(cfg.widths)
        self.proj_in = nn.Conv2d(cfg.in_channels, cfg.widths[0], 3, padding=1)
        self.down_levels = nn.ModuleList(level(i, cfg.depths[i]) for i in range(n - 1))
        self.downsamples = nn.ModuleList(nn.Conv2d(cfg.widths[i], cfg.widths[i + 1], 3, 2, 1) for i in range(n - 1))
        self.mid_level = level(n - 1, cfg.depths[-1])
        self.upsamples = nn.ModuleList(Upsample(cfg.widths[i + 1], cfg.widths[i]) for i in range(n - 1))
        self.up_levels = nn.ModuleList(level(i, cfg.depths[i]) for i in range(n - 1))
        self.out_norm = RMSNorm2d(cfg.widths[0])
        self.proj_out = nn.Conv2d(cfg.widths[0], cfg.in_channels, 3, padding=1)
        self.to(memory_format=torch.channels_last)  # weights too, or every convolution reorders them

    def time_embedding(self, time: torch.Tensor) -> torch.Tensor:
        """[B] times -> [B, time_dim] condition: Fourier features (cos, sin) then the mapping network."""
        return self.mapping(self.time_in(self.time_emb(time[:, None].to(self.time_emb.weight.dtype))))

    def forward(self, x: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        factor = 2 ** (len(self.config.widths) - 1)
        if x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(f"latent sides must be multiples of {factor} for this flow network, got {tuple(x.shape[-2:])}")
        cond = self.time_embedding(time.expand(x.shape[0]))
        h = self.proj_in(x.contiguous(memory_format=torch.channels_last))
        skips = []
        for blocks, down in zip(self.down_levels, self.downsamples):
            h = blocks(h, cond)
            skips.append(h)
            h = down(h)
        h = self.mid_level(h, cond)
        for blocks, up, skip in reversed(list(zip(self.up_levels, self.upsamples, skips))):
            h = blocks(up(h, skip), cond)
        return self.proj_out(self.out_norm(h))
