"""CodeFormer (Zhou et al., NeurIPS 2022) in plain PyTorch, key-compatible with the released `codeformer.pth`.

Restates sczhou/CodeFormer `basicsr/archs/vqgan_arch.py` and `codeformer_arch.py` (aeb20c80) without basicsr:
a VQGAN encoder to a 16x16x256 latent, a transformer predicting one of 1024 codebook entries per token, the
codebook lookup (AdaIN'd to the encoder's statistics when `adain=True`), and the VQGAN generator, into which
the encoder's features are fused by the controllable feature transformation layers with weight w (w = 0 skips
them, as published). Parameter names and registration order are the published ones, so `params_ema` loads
strictly. The published sizes are hard-coded there; here they are a `CodeFormerConfig`, so a tiny network runs
the same code in tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class CodeFormerConfig:
    """Sizes of the network; the defaults are the released model's."""

    img_size: int = 512
    nf: int = 64
    ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4, 8)
    res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    codebook_size: int = 1024
    emb_dim: int = 256  # codebook entry size
    dim_embd: int = 512  # transformer width
    n_head: int = 8
    n_layers: int = 9
    connect_list: tuple[str, ...] = ("32", "64", "128", "256")  # resolutions fused with weight w

    @property
    def latent_side(self) -> int:
        return self.img_size // 2 ** (len(self.ch_mult) - 1)

    def channels(self, resolution: int) -> int:
        """Feature channels at one resolution (the published `channels` table)."""
        return self.nf * self.ch_mult[(self.img_size // resolution).bit_length() - 1]


CONFIGS = {
    "codeformer": CodeFormerConfig(),
    # 32x32 in, the same 16x16x256 latent (the published forward assumes it), 32/64 channels, fused at both.
    "codeformer_tiny": CodeFormerConfig(img_size=32, nf=32, ch_mult=(1, 2), codebook_size=64, dim_embd=64,
                                        n_head=4, n_layers=2, connect_list=("16", "32")),
}


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels, eps=1e-6)


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = group_norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.conv_out = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(swish(self.norm2(self.conv1(swish(self.norm1(x))))))
        return h + (self.conv_out(x) if hasattr(self, "conv_out") else x)


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions, 1x1-conv projections."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = group_norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        b, c, hh, ww = x.shape
        q, k, v = (p(h).reshape(b, c, hh * ww) for p in (self.q, self.k, self.v))
        attn = F.softmax(torch.bmm(q.permute(0, 2, 1), k) * int(c) ** -0.5, dim=2)
        return x + self.proj_out(torch.bmm(v, attn.permute(0, 2, 1)).reshape(b, c, hh, ww))


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Blocks(nn.Module):
    """A VQGAN encoder or generator: `blocks` run in order; `taps` maps a resolution to the index of the block
    after which its features are taken (encoder) or fused (generator)."""

    def __init__(self, blocks: list[nn.Module], taps: dict[str, int]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.taps = taps


def build_encoder(cfg: CodeFormerConfig) -> Blocks:
    """Taps after each level's last ResBlock (before its attention at attention resolutions)."""
    blocks: list[nn.Module] = [nn.Conv2d(3, cfg.nf, 3, padding=1)]
    taps, res, cin = {}, cfg.img_size, cfg.nf
    for level, mult in enumerate(cfg.ch_mult):
        for _ in range(cfg.res_blocks):
            blocks.append(ResBlock(cin, cfg.nf * mult))
            cin = cfg.nf * mult
            taps[str(res)] = len(blocks) - 1
            if res in cfg.attn_resolutions:
                blocks.append(AttnBlock(cin))
        if level != len(cfg.ch_mult) - 1:
            blocks.append(Downsample(cin))
            res //= 2
    blocks += [ResBlock(cin, cin), AttnBlock(cin), ResBlock(cin, cin), group_norm(cin),
               nn.Conv2d(cin, cfg.emb_dim, 3, padding=1)]
    return Blocks(blocks, taps)


def build_generator(cfg: CodeFormerConfig) -> Blocks:
    """Taps after each level's first ResBlock, or its last one (before its attention) at attention resolutions."""
    cin = cfg.nf * cfg.ch_mult[-1]
    blocks: list[nn.Module] = [nn.Conv2d(cfg.emb_dim, cin, 3, padding=1), ResBlock(cin, cin), AttnBlock(cin),
                               ResBlock(cin, cin)]
    taps, res = {}, cfg.latent_side
    for level in reversed(range(len(cfg.ch_mult))):
        for j in range(cfg.res_blocks):
            blocks.append(ResBlock(cin, cfg.nf * cfg.ch_mult[level]))
            cin = cfg.nf * cfg.ch_mult[level]
            if j == 0 or res in cfg.attn_resolutions:
                taps[str(res)] = len(blocks) - 1
            if res in cfg.attn_resolutions:
                blocks.append(AttnBlock(cin))
        if level != 0:
            blocks.append(Upsample(cin))
            res *= 2
    blocks += [group_norm(cin), nn.Conv2d(cin, 3, 3, padding=1)]
    return Blocks(blocks, taps)


class Codebook(nn.Module):
    def __init__(self, size: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(size, dim)


class TransformerSALayer(nn.Module):
    """Pre-norm self-attention (position embedding added to queries and keys only) and a GELU MLP."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads)
        self.linear1, self.linear2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.self_attn(h + pos, h + pos, value=h)[0]
        return x + self.linear2(F.gelu(self.linear1(self.norm2(x))))


class FuseSFT(nn.Module):
    """Controllable feature transformation: dec + w * (dec * scale(enc, dec) + shift(enc, dec))."""

    def __init__(self, c: int):
        super().__init__()
        self.encode_enc = ResBlock(2 * c, c)
        self.scale, self.shift = (
            nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.LeakyReLU(0.2, True), nn.Conv2d(c, c, 3, padding=1))
            for _ in range(2))

    def forward(self, enc: torch.Tensor, dec: torch.Tensor, w: float) -> torch.Tensor:
        h = self.encode_enc(torch.cat([enc, dec], dim=1))
        return dec + w * (dec * self.scale(h) + self.shift(h))


def mean_std(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and sqrt(unbiased variance + eps), as the published `calc_mean_std`."""
    flat = x.flatten(2)
    return flat.mean(dim=2)[..., None, None], (flat.var(dim=2) + eps).sqrt()[..., None, None]


def adaptive_instance_norm(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Give `content` the per-channel mean and std of `style`."""
    (cm, cs), (sm, ss) = mean_std(content), mean_std(style)
    return (content - cm) / cs * ss + sm


class CodeFormer(nn.Module):
    def __init__(self, cfg: CodeFormerConfig = CodeFormerConfig()):
        super().__init__()
        self.config = cfg
        self.encoder = build_encoder(cfg)
        self.quantize = Codebook(cfg.codebook_size, cfg.emb_dim)
        self.generator = build_generator(cfg)
        self.position_emb = nn.Parameter(torch.zeros(cfg.latent_side**2, cfg.dim_embd))
        self.feat_emb = nn.Linear(cfg.emb_dim, cfg.dim_embd)
        self.ft_layers = nn.Sequential(*(TransformerSALayer(cfg.dim_embd, cfg.n_head) for _ in range(cfg.n_layers)))
        self.idx_pred_layer = nn.Sequential(nn.LayerNorm(cfg.dim_embd),
                                            nn.Linear(cfg.dim_embd, cfg.codebook_size, bias=False))
        self.fuse_convs_dict = nn.ModuleDict({s: FuseSFT(cfg.channels(int(s))) for s in cfg.connect_list})

    def forward(self, x: torch.Tensor, w: float = 0.0, adain: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x in [-1, 1] -> (image in about [-1, 1], code logits [B, HW, codebook], encoder latent)."""
        taps = {self.encoder.taps[s]: s for s in self.config.connect_list}
        enc_feats = {}
        for i, block in enumerate(self.encoder.blocks):
            x = block(x)
            if i in taps:
                enc_feats[taps[i]] = x
        lq_feat = x
        b, _, h, w_side = lq_feat.shape
        tokens = self.feat_emb(lq_feat.flatten(2).permute(2, 0, 1))  # (HW, B, C), sequence first as published
        pos = self.position_emb.unsqueeze(1).repeat(1, b, 1)
        for layer in self.ft_layers:
            tokens = layer(tokens, pos)
        logits = self.idx_pred_layer(tokens).permute(1, 0, 2)
        _, index = torch.topk(F.softmax(logits, dim=2), 1, dim=2)  # the published argmax, ties included
        # contiguous as published: AdaIN's statistics then reduce in the same order, to the bit
        quant = self.quantize.embedding(index[..., 0]).view(b, h, w_side, -1).permute(0, 3, 1, 2).contiguous()
        if adain:
            quant = adaptive_instance_norm(quant, lq_feat)
        x = quant
        fuse_at = {self.generator.taps[s]: s for s in self.config.connect_list}
        for i, block in enumerate(self.generator.blocks):
            x = block(x)
            if i in fuse_at and w > 0:
                x = self.fuse_convs_dict[fuse_at[i]](enc_feats[fuse_at[i]], x, w)
        return x, logits, lq_feat

