"""Hourglass Diffusion Transformer (k-diffusion `image_transformer_v2`) as PMRF configures its flow network.

Patches in, a U of transformer levels (neighborhood attention on the high-resolution levels, global
attention in the middle), patches out. Attention is cosine-similarity attention with a learned per-head scale
and axial RoPE on half of each head; feed-forwards are GEGLU; every block is pre-normed by an AdaRMSNorm driven
by a mapping network of the flow time (Fourier features, a fixed random buffer stored in the checkpoint).
The network is unconditional: only x_t and t go in. Names and shapes follow PMRF's
`arch/hourglass/image_transformer_v2.py`, so the published `model.*` tensors load strictly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from lpmrf_bench.models.neighborhood import neighborhood_attention


@dataclass(frozen=True)
class LevelConfig:
    """One hourglass level; `kernel_size` None means global attention."""

    depth: int
    width: int
    d_head: int = 64
    kernel_size: int | None = 7

    @property
    def d_ff(self) -> int:
        return 3 * self.width


@dataclass(frozen=True)
class HDiTConfig:
    levels: tuple[LevelConfig, ...]
    mapping_depth: int = 2
    mapping_width: int = 768
    in_channels: int = 3
    out_channels: int = 3
    patch_size: tuple[int, int] = (4, 4)
    aug_features: int = field(default=9, repr=False)  # augmentation-conditioning input, always zero at PMRF

    @property
    def mapping_d_ff(self) -> int:
        return 3 * self.mapping_width


HDIT_CONFIGS: dict[str, HDiTConfig] = {
    "hdit_ImageNet256Sp4": HDiTConfig(
        levels=(LevelConfig(2, 256), LevelConfig(2, 512), LevelConfig(8, 1024, kernel_size=None)),
    ),
    "hdit_XL2": HDiTConfig(levels=(LevelConfig(2, 384), LevelConfig(11, 768, kernel_size=None))),
    "hdit_tiny": HDiTConfig(
        levels=(LevelConfig(1, 16, 8, 3), LevelConfig(1, 32, 8, 3), LevelConfig(1, 64, 16, None)),
        mapping_depth=1,
        mapping_width=32,
        patch_size=(2, 2),
    ),
    "hdit_S": HDiTConfig(  # the embedded 64 px pixel flow (trained on CPU)
        levels=(LevelConfig(1, 32, 16, 3), LevelConfig(1, 64, 16, 3), LevelConfig(2, 128, 32, None)),
        mapping_depth=1,
        mapping_width=64,
        patch_size=(2, 2),
    ),
}


# Kernels: the published op order, with float32 accumulation for norms and rotations.

def rms_norm(x: torch.Tensor, scale: torch.Tensor, eps: float) -> torch.Tensor:
    dtype = torch.promote_types(torch.promote_types(x.dtype, scale.dtype), torch.float32)
    mean_sq = x.to(dtype).pow(2).mean(dim=-1, keepdim=True)
    return x * (scale.to(dtype) * torch.rsqrt(mean_sq + eps)).to(x.dtype)


def scale_for_cosine_sim(
    q: torch.Tensor, k: torch.Tensor, scale: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-normalise q and k over the head dim, each times sqrt(scale): q.k becomes scale * cos(q, k)."""
    dtype = torch.promote_types(torch.promote_types(q.dtype, scale.dtype), torch.float32)
    sqrt_scale = scale.to(dtype).sqrt()
    scale_q = sqrt_scale * torch.rsqrt(q.to(dtype).pow(2).sum(dim=-1, keepdim=True) + eps)
    scale_k = sqrt_scale * torch.rsqrt(k.to(dtype).pow(2).sum(dim=-1, keepdim=True) + eps)
    return q * scale_q.to(q.dtype), k * scale_k.to(k.dtype)


def apply_rotary(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotate the pairs (x[:d], x[d:2d]) by theta (d = theta's last dim); the rest of x passes through."""
    d = theta.shape[-1]
    dtype = torch.promote_types(torch.promote_types(x.dtype, theta.dtype), torch.float32)
    x1, x2, rest = x[..., :d].to(dtype), x[..., d : 2 * d].to(dtype), x[..., 2 * d :]
    cos, sin = theta.to(dtype).cos(), theta.to(dtype).sin()
    y1, y2 = x1 * cos - x2 * sin, x2 * cos + x1 * sin
    return torch.cat((y1.to(x.dtype), y2.to(x.dtype), rest), dim=-1)


def axial_positions(h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
    """[h, w, 2] (y, x) cell centres in a box of half-side 1 along the longer axis."""
    y_max, x_max = (1.0, 1.0)
    if w > h:
        y_max = h / w
    elif w < h:
        x_max = w / h

    def centers(half: float, n: int) -> torch.Tensor:
        edges = torch.linspace(-half, half, n + 1, device=device)
        return (edges[:-1] + edges[1:]) / 2

    return torch.stack(torch.meshgrid(centers(y_max, h), centers(x_max, w), indexing="ij"), dim=-1)


def downscale_positions(pos: torch.Tensor) -> torch.Tensor:
    """Average the positions of each 2x2 patch: [h, w, 2] -> [h/2, w/2, 2]."""
    h, w, e = pos.shape
    patches = pos.view(h // 2, 2, w // 2, 2, e).transpose(1, 2).reshape(h // 2, w // 2, 4, e)
    return patches.mean(dim=-2)  # over the 4 in published order, so float32 rounding matches too


def patchify(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """[..., H, W, C] -> [..., H/ph, W/pw, ph*pw*C] (patch-major, channels last)."""
    *b, h, w, c = x.shape
    x = x.reshape(*b, h // ph, ph, w // pw, pw, c).transpose(-4, -3)
    return x.reshape(*b, h // ph, w // pw, ph * pw * c)


def unpatchify(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """Inverse of `patchify`."""
    *b, h, w, _ = x.shape
    x = x.reshape(*b, h, w, ph, pw, -1).transpose(-4, -3)
    return x.reshape(*b, h * ph, w * pw, x.shape[-1])


# Layers

def zero_init(layer: nn.Linear) -> nn.Linear:
    """Published init of residual-branch outputs and norm modulations: the block starts as the identity."""
    nn.init.zeros_(layer.weight)
    return layer


class FourierFeatures(nn.Module):
    def __init__(self, in_features: int, out_features: int, std: float = 1.0):
        super().__init__()
        self.register_buffer("weight", torch.randn(out_features // 2, in_features) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = 2 * math.pi * x @ self.weight.T
        return torch.cat([f.cos(), f.sin()], dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, features: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.scale, self.eps)


class AdaRMSNorm(nn.Module):
    def __init__(self, features: int, cond_features: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.linear = zero_init(nn.Linear(cond_features, features, bias=False))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: [B, H, W, C]; cond: [B, cond_features]."""
        return rms_norm(x, self.linear(cond)[:, None, None, :] + 1, self.eps)


class LinearGEGLU(nn.Linear):
    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features * 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = F.linear(x, self.weight).chunk(2, dim=-1)
        return x * F.gelu(gate)


class AxialRoPE(nn.Module):
    """Per-head log-spaced frequencies in [pi, 10 pi); theta = (y * freqs, x * freqs), each dim // 4 wide.

    `apply_rotary` rotates the pairs (x[j], x[j + dim // 2]) for j < dim // 2 (dim = d_head // 2): the first
    dim // 4 pairs by y-angles, the next dim // 4 by x-angles; the other half of the head is not rotated.
    """

    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        freqs = torch.linspace(math.log(math.pi), math.log(10.0 * math.pi), n_heads * dim // 4 + 1)[:-1].exp()
        self.register_buffer("freqs", freqs.view(dim // 4, n_heads).T.contiguous())

    def forward(self, pos: torch.Tensor) -> torch.Tensor:
        """pos [..., 2] -> theta [..., n_heads, dim // 2]."""
        theta_h = pos[..., None, 0:1] * self.freqs.to(pos.dtype)
        theta_w = pos[..., None, 1:2] * self.freqs.to(pos.dtype)
        return torch.cat((theta_h, theta_w), dim=-1)


class SelfAttentionBlock(nn.Module):
    """Cosine-sim attention with RoPE: over a k x k neighborhood, or global when `kernel_size` is None."""

    def __init__(self, d_model: int, d_head: int, cond_features: int, kernel_size: int | None):
        super().__init__()
        self.d_head, self.n_heads, self.kernel_size = d_head, d_model // d_head, kernel_size
        self.norm = AdaRMSNorm(d_model, cond_features)
        self.qkv_proj = nn.Linear(d_model, d_model * 3, bias=False)
        self.scale = nn.Parameter(torch.full([self.n_heads], 10.0))
        self.pos_emb = AxialRoPE(d_head // 2, self.n_heads)
        self.out_proj = zero_init(nn.Linear(d_model, d_model, bias=False))

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x: [B, H, W, C]; pos: [H, W, 2]; cond: [B, cond_features]."""
        b, h, w, c = x.shape
        qkv = self.qkv_proj(self.norm(x, cond))
        q, k, v = qkv.view(b, h, w, 3, self.n_heads, self.d_head).permute(3, 0, 4, 1, 2, 5)  # [B, nh, H, W, e]
        q, k = scale_for_cosine_sim(q, k, self.scale[:, None, None, None], 1e-6)
        # the published global block casts positions to the activation dtype first, the neighborhood one does not
        pos = pos.to(qkv.dtype) if self.kernel_size is None else pos
        theta = self.pos_emb(pos).movedim(-2, -4)  # [nh, H, W, e/4]
        q, k = apply_rotary(q, theta), apply_rotary(k, theta)
        if self.kernel_size is None:
            flat = [t.reshape(b, self.n_heads, h * w, self.d_head) for t in (q, k, v)]
            y = F.scaled_dot_product_attention(*flat, scale=1.0).view(b, self.n_heads, h, w, self.d_head)
        else:
            y = neighborhood_attention(q, k, v, self.kernel_size, scale=1.0)
        y = y.permute(0, 2, 3, 1, 4).reshape(b, h, w, c)
        return self.out_proj(y) + x


class FeedForwardBlock(nn.Module):
    def __init__(self, d_model: int, d_ff: int, cond_features: int):
        super().__init__()
        self.norm = AdaRMSNorm(d_model, cond_features)
        self.up_proj = LinearGEGLU(d_model, d_ff)
        self.down_proj = zero_init(nn.Linear(d_ff, d_model, bias=False))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.up_proj(self.norm(x, cond))) + x


class TransformerLayer(nn.Module):
    def __init__(self, spec: LevelConfig, cond_features: int):
        super().__init__()
        self.self_attn = SelfAttentionBlock(spec.width, spec.d_head, cond_features, spec.kernel_size)
        self.ff = FeedForwardBlock(spec.width, spec.d_ff, cond_features)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.ff(self.self_attn(x, pos, cond), cond)


class Level(nn.ModuleList):
    def forward(self, x: torch.Tensor, pos: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, pos, cond)
        return x


class MappingFeedForwardBlock(nn.Module):
    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.norm = RMSNorm(d_model)
        self.up_proj = LinearGEGLU(d_model, d_ff)
        self.down_proj = zero_init(nn.Linear(d_ff, d_model, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.up_proj(self.norm(x))) + x


class MappingNetwork(nn.Module):
    def __init__(self, n_layers: int, d_model: int, d_ff: int):
        super().__init__()
        self.in_norm = RMSNorm(d_model)
        self.blocks = nn.ModuleList(MappingFeedForwardBlock(d_model, d_ff) for _ in range(n_layers))
        self.out_norm = RMSNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_norm(x)
        for block in self.blocks:
            x = block(x)
        return self.out_norm(x)


class TokenMerge(nn.Module):
    def __init__(self, in_features: int, out_features: int, patch_size: tuple[int, int] = (2, 2)):
        super().__init__()
        self.h, self.w = patch_size
        self.proj = nn.Linear(in_features * self.h * self.w, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(patchify(x, self.h, self.w))


class TokenSplit(nn.Module):
    """Upsample tokens and blend with the skip connection by a learned factor (`fac`, init 0.5)."""

    def __init__(self, in_features: int, out_features: int, patch_size: tuple[int, int] = (2, 2), skip: bool = True):
        super().__init__()
        self.h, self.w = patch_size
        self.proj = nn.Linear(in_features, out_features * self.h * self.w, bias=False)
        if skip:
            self.fac = nn.Parameter(torch.ones(1) * 0.5)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = unpatchify(self.proj(x), self.h, self.w)
        return x if skip is None else torch.lerp(skip, x, self.fac.to(x.dtype))


class HDiT(nn.Module):
    def __init__(self, config: HDiTConfig):
        super().__init__()
        c = config
        self.config = c
        width0, mw = c.levels[0].width, c.mapping_width
        self.patch_in = TokenMerge(c.in_channels, width0, c.patch_size)
        self.time_emb = FourierFeatures(1, mw)
        self.time_in_proj = nn.Linear(mw, mw, bias=False)
        self.aug_emb = FourierFeatures(c.aug_features, mw)
        self.aug_in_proj = nn.Linear(mw, mw, bias=False)
        self.mapping = MappingNetwork(c.mapping_depth, mw, c.mapping_d_ff)
        self.down_levels, self.up_levels = nn.ModuleList(), nn.ModuleList()
        for spec in c.levels[:-1]:
            self.down_levels.append(Level(TransformerLayer(spec, mw) for _ in range(spec.depth)))
            self.up_levels.append(Level(TransformerLayer(spec, mw) for _ in range(spec.depth)))
        self.mid_level = Level(TransformerLayer(c.levels[-1], mw) for _ in range(c.levels[-1].depth))
        pairs = list(zip(c.levels[:-1], c.levels[1:]))
        self.merges = nn.ModuleList(TokenMerge(a.width, b.width) for a, b in pairs)
        self.splits = nn.ModuleList(TokenSplit(b.width, a.width) for a, b in pairs)
        self.out_norm = RMSNorm(width0)
        self.patch_out = TokenSplit(width0, c.out_channels, c.patch_size, skip=False)
        zero_init(self.patch_out.proj)

    def required_multiple(self) -> int:
        """Input sides must be multiples of this (patching, then one 2x merge per level below the top)."""
        return self.config.patch_size[0] * 2 ** (len(self.config.levels) - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocity at x_t: x [B, C, H, W], t [B] (flow time in [0, 1]) -> [B, C_out, H, W]."""
        m = self.required_multiple()
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"HDiT needs height and width divisible by {m}, got {tuple(x.shape[-2:])}")
        x = self.patch_in(x.movedim(-3, -1))
        pos = axial_positions(x.shape[-3], x.shape[-2], device=x.device)
        time = self.time_in_proj(self.time_emb(t[:, None].to(self.time_emb.weight.dtype)))
        aug = self.aug_in_proj(self.aug_emb(x.new_zeros(x.shape[0], self.config.aug_features)))
        cond = self.mapping(time + aug)

        skips, poses = [], []
        for level, merge in zip(self.down_levels, self.merges):
            x = level(x, pos, cond)
            skips.append(x)
            poses.append(pos)
            x = merge(x)
            pos = downscale_positions(pos)
        x = self.mid_level(x, pos, cond)
        for level, split, skip, pos in reversed(list(zip(self.up_levels, self.splits, skips, poses))):
            x = level(split(x, skip), pos, cond)
        return self.patch_out(self.out_norm(x)).movedim(-1, -3)
