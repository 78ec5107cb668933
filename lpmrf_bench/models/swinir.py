"""SwinIR as PMRF and DifFace use it: the posterior-mean (MMSE) predictor of blind face restoration.

Image [B,3,H,W] in [0,1] -> PixelUnshuffle x`scale` -> conv to `embed_dim` -> residual Swin groups ("1conv"
residual connection) -> "nearest+conv" upsampler (log2(scale) nearest x2 steps, each followed by a conv) ->
image at the input size. Parameter and buffer names follow DifFace's `models/swinir.py` (which PMRF copies),
so `swinir_restoration512_L1.pth` loads strictly; its buffers `relative_position_index` and `attn_mask` are
deterministic and rebuilt here with the same shapes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

RGB_MEAN = (0.4488, 0.4371, 0.4040)  # subtracted before and added back after the network (img_range 1.0)


@dataclass(frozen=True)
class SwinIRConfig:
    """`img_size` is the feature-map side the stored shift masks are built for (input side // scale)."""

    in_channels: int = 3
    out_channels: int = 3
    embed_dim: int = 180
    depths: tuple[int, ...] = (6,) * 8
    num_heads: tuple[int, ...] = (6,) * 8
    window_size: int = 8
    mlp_ratio: float = 2.0
    scale: int = 8
    img_size: int = 64
    num_feat: int = 64
    img_range: float = 1.0
    residual: bool = False  # add the input to the output (ours, not published); `conv_last` starts at zero


SWINIR_CONFIGS: dict[str, SwinIRConfig] = {
    "swinir_L": SwinIRConfig(),
    "swinir_M": SwinIRConfig(embed_dim=120, depths=(6,) * 5, num_heads=(6,) * 5),
    "swinir_tiny": SwinIRConfig(embed_dim=12, depths=(2, 2), num_heads=(2, 2), window_size=4, img_size=8, num_feat=8),
    # the embedded 64 px posterior mean (trained on CPU): scale 4, so its 16x16 tokens keep every input pixel's
    # information (4x4x3 = 48 values per token; scale 8 squeezed 192 values into each token and trained to barely
    # above the identity); residual, so it starts at the identity instead of spending ~3000 steps learning to copy
    "swinir_S": SwinIRConfig(embed_dim=48, depths=(2, 2, 2), num_heads=(4, 4, 4), window_size=4, img_size=16, num_feat=32,
                             scale=4, residual=True),
}


def window_partition(x: torch.Tensor, size: int) -> torch.Tensor:
    """[B, H, W, C] -> [B, nW, size*size, C], windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // size, size, w // size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // size) * (w // size), size * size, c)


def window_merge(x: torch.Tensor, size: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`: [B, nW, size*size, C] -> [B, H, W, C]."""
    b, c = x.shape[0], x.shape[-1]
    x = x.view(b, h // size, w // size, size, size, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def relative_position_index(size: int) -> torch.Tensor:
    """[size^2, size^2] index into the (2*size-1)^2 relative-bias table, Swin's layout."""
    coords = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (size - 1)
    return rel[..., 0] * (2 * size - 1) + rel[..., 1]


def shift_mask(h: int, w: int, size: int, shift: int) -> torch.Tensor:
    """[nW, size^2, size^2] additive mask (0 or -100) keeping a rolled window from mixing wrapped regions."""
    regions = torch.zeros(1, h, w, 1)
    cuts = (slice(0, -size), slice(-size, -shift), slice(-shift, None))
    for n, (hs, ws) in enumerate((hs, ws) for hs in cuts for ws in cuts):
        regions[:, hs, ws, :] = n
    labels = window_partition(regions, size)[0, :, :, 0]
    diff = labels[:, None, :] - labels[:, :, None]
    return torch.where(diff != 0, -100.0, 0.0)


class WindowAttention(nn.Module):
    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        self.window_size, self.num_heads = window_size, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: [B, nW, N, C] windows; mask: [nW, N, N] or None."""
        b, nw, n, c = x.shape
        q, k, v = self.qkv(x).view(b, nw, n, 3, self.num_heads, c // self.num_heads).permute(3, 0, 1, 4, 2, 5)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, self.num_heads).permute(2, 0, 1)  # [heads, N, N]
        if mask is not None:
            bias = bias + mask[:, None]  # [nW, heads, N, N]
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), scale=self.scale)
        return self.proj(x.transpose(2, 3).reshape(b, nw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    def __init__(self, dim: int, resolution: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float):
        super().__init__()
        if resolution <= window_size:  # one window covers the map: no shifting (as published)
            window_size, shift = resolution, 0
        self.window_size, self.shift, self.resolution = window_size, shift, resolution
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = shift_mask(resolution, resolution, window_size, shift) if shift else None
        self.register_buffer("attn_mask", mask)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        b, _, c = x.shape
        y = self.norm1(x).view(b, h, w, c)
        mask = None
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
            same = (h, w) == (self.resolution, self.resolution)
            mask = self.attn_mask if same else shift_mask(h, w, self.window_size, self.shift).to(x.device)
        y = self.attn(window_partition(y, self.window_size), mask)
        y = window_merge(y, self.window_size, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, h * w, c)
        return x + self.mlp(self.norm2(x))


class BasicLayer(nn.Module):
    def __init__(self, dim: int, resolution: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float):
        super().__init__()
        shifts = [0 if i % 2 == 0 else window_size // 2 for i in range(depth)]
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, resolution, num_heads, window_size, shift, mlp_ratio) for shift in shifts
        )

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, size)
        return x


def tokens_to_image(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, H*W, C] -> [B, C, H, W]."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *size)


class RSTB(nn.Module):
    """Residual Swin transformer group with the "1conv" residual connection."""

    def __init__(self, dim: int, resolution: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float):
        super().__init__()
        self.residual_group = BasicLayer(dim, resolution, depth, num_heads, window_size, mlp_ratio)
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.conv(tokens_to_image(self.residual_group(x, size), size))
        return y.flatten(2).transpose(1, 2) + x


class PatchNorm(nn.Module):
    """Holds the LayerNorm applied to the tokens after embedding (`patch_embed.norm` in the checkpoints)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)


def _init_weights(m: nn.Module) -> None:
    """The published init (for training from scratch): truncated-normal linears and bias table, zero biases."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, WindowAttention):
        nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)


class SwinIR(nn.Module):
    def __init__(self, config: SwinIRConfig):
        super().__init__()
        c = config
        if c.scale & (c.scale - 1) or c.scale < 2:
            raise ValueError(f"SwinIR scale must be a power of two >= 2 for the nearest+conv upsampler, got {c.scale}")
        if len(c.depths) != len(c.num_heads):
            raise ValueError(f"SwinIR depths {c.depths} and num_heads {c.num_heads} differ in length")
        self.config = c
        mean = torch.tensor(RGB_MEAN) if c.in_channels == 3 else torch.zeros(c.in_channels)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.conv_first = nn.Sequential(
            nn.PixelUnshuffle(c.scale), nn.Conv2d(c.in_channels * c.scale**2, c.embed_dim, 3, 1, 1)
        )
        self.patch_embed = PatchNorm(c.embed_dim)
        self.layers = nn.ModuleList(
            RSTB(c.embed_dim, c.img_size, depth, heads, c.window_size, c.mlp_ratio)
            for depth, heads in zip(c.depths, c.num_heads)
        )
        self.norm = nn.LayerNorm(c.embed_dim)
        self.conv_after_body = nn.Conv2d(c.embed_dim, c.embed_dim, 3, 1, 1)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(c.embed_dim, c.num_feat, 3, 1, 1), nn.LeakyReLU())
        self.n_up = int(math.log2(c.scale))
        for i in range(1, self.n_up + 1):
            self.add_module(f"conv_up{i}", nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1))
        self.conv_hr = nn.Conv2d(c.num_feat, c.num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(c.num_feat, c.out_channels, 3, 1, 1)
        self.apply(_init_weights)
        if c.residual:
            nn.init.zeros_(self.conv_last.weight)
            nn.init.zeros_(self.conv_last.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[2], x.shape[3])
        x = self.patch_embed.norm(x.flatten(2).transpose(1, 2))
        for layer in self.layers:
            x = layer(x, size)
        return tokens_to_image(self.norm(x), size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in [0,1] -> [B,3,H,W]; H and W must be multiples of scale * window_size."""
        multiple = self.config.scale * self.config.window_size
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(
                f"SwinIR needs height and width divisible by {multiple} (scale {self.config.scale} x window "
                f"{self.config.window_size}); got {tuple(x.shape[-2:])}. Resize or pad the input (PMRF uses 512x512)."
            )
        mean = self.mean.to(x.dtype)
        lq = x
        x = (x - mean) * self.config.img_range
        x = self.conv_first(x)
        x = self.conv_after_body(self.forward_features(x)) + x
        x = self.conv_before_upsample(x)
        for i in range(1, self.n_up + 1):
            x = F.leaky_relu(getattr(self, f"conv_up{i}")(F.interpolate(x, scale_factor=2, mode="nearest")), 0.2)
        x = self.conv_last(F.leaky_relu(self.conv_hr(x), 0.2)) / self.config.img_range
        return x + (lq if self.config.residual else mean)
