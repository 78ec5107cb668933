"""Neighborhood attention with NATTEN semantics, on torch's `flex_attention`.

Each query at (i, j) attends to the k x k window of keys centred on it, except near the borders, where the
window is shifted inward so that it stays inside the map (never zero-padded): for odd k and r = k // 2 the
window rows are [clamp(i - r, 0, H - k), clamp(i - r, 0, H - k) + k). No dilation, no relative position bias.
This is what PMRF's HDiT gets from `natten.functional.na2d`, without the natten install.

The block mask depends only on (H, W, kernel, device), so it is built once and cached; a model compiled
after one eager call reads it as a constant (compiled first, the mask build is traced into the graph).
On CUDA the flex kernel is compiled (the eager path materialises the full score matrix); `set_compile(False)`
turns that off. On CPU the eager path is used and is exact (tests compare it with an explicit per-query
loop); flex has no CPU backward, so CPU calls that need gradients (tiny-config training) use dense SDPA with
the same mask.
"""
from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

_compile_on_cuda = True


def set_compile(enabled: bool) -> None:
    """Choose whether CUDA calls go through `torch.compile(flex_attention)` (default) or the eager path."""
    global _compile_on_cuda
    _compile_on_cuda = enabled


@functools.cache
def _compiled_flex():
    return torch.compile(flex_attention, dynamic=False)


def window_start(index: torch.Tensor, size: int, kernel_size: int) -> torch.Tensor:
    """First row (or column) of the clamped window of each query index along an axis of length `size`."""
    return (index - kernel_size // 2).clamp(0, size - kernel_size)


_BLOCK_MASKS: dict[tuple[int, int, int, torch.device], BlockMask] = {}


def neighborhood_block_mask(height: int, width: int, kernel_size: int, device: torch.device) -> BlockMask:
    """The flex block mask of a k x k clamped neighborhood over a row-major H x W token grid, built once.

    A plain dict, not `lru_cache`: inside `torch.compile` dynamo reads a dict entry as a constant, whereas it
    would trace through an lru_cache and rebuild the mask in every compiled call.
    """
    key = (height, width, kernel_size, device)
    if key not in _BLOCK_MASKS:

        def mask_mod(b, h, q_idx, kv_idx):
            qi, qj = q_idx // width, q_idx % width
            ki, kj = kv_idx // width, kv_idx % width
            si, sj = window_start(qi, height, kernel_size), window_start(qj, width, kernel_size)
            return (ki >= si) & (ki < si + kernel_size) & (kj >= sj) & (kj < sj + kernel_size)

        n = height * width
        _BLOCK_MASKS[key] = create_block_mask(mask_mod, None, None, n, n, device=device)
    return _BLOCK_MASKS[key]


# On CPU, eager flex_attention (no backward) is ~5x slower than SDPA with a dense mask; small maps (the 64 px
# models: 32x32 tokens, a 1M-entry mask) take the dense path, large ones (512 px: 128x128) stay on flex.
DENSE_CPU_MAX_TOKENS = 4096


@functools.lru_cache(maxsize=16)
def neighborhood_dense_mask(height: int, width: int, kernel_size: int, device: torch.device) -> torch.Tensor:
    """[H*W, H*W] boolean mask (True = attend) of the same neighborhoods, for the dense fallback."""
    i, j = torch.arange(height, device=device), torch.arange(width, device=device)
    rows = (i[None, :] >= window_start(i, height, kernel_size)[:, None]) & (
        i[None, :] < window_start(i, height, kernel_size)[:, None] + kernel_size
    )
    cols = (j[None, :] >= window_start(j, width, kernel_size)[:, None]) & (
        j[None, :] < window_start(j, width, kernel_size)[:, None] + kernel_size
    )
    return (rows[:, None, :, None] & cols[None, :, None, :]).reshape(height * width, height * width)


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int) -> None:
    if q.ndim != 5 or q.shape != k.shape or q.shape[:-1] != v.shape[:-1]:
        raise ValueError(
            f"neighborhood_attention wants q, k, v shaped [B, heads, H, W, d] (k like q, v like q up to d); "
            f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    height, width = q.shape[2], q.shape[3]
    if height < kernel_size or width < kernel_size:
        raise ValueError(
            f"a {kernel_size}x{kernel_size} neighborhood needs a feature map at least that large, "
            f"got {height}x{width}; use a larger input or a smaller kernel"
        )


def neighborhood_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int, scale: float | None = None
) -> torch.Tensor:
    """Softmax attention of each query over its clamped k x k neighborhood; q, k, v, out: [B, heads, H, W, d].

    `scale` multiplies q.k before the softmax (default d ** -0.5; HDiT passes 1.0 because its cosine-sim
    attention has already scaled q and k).
    """
    _check(q, k, v, kernel_size)
    b, heads, height, width, _ = q.shape
    q_, k_, v_ = (t.reshape(b, heads, height * width, t.shape[-1]) for t in (q, k, v))
    dense_ok = height * width <= DENSE_CPU_MAX_TOKENS
    if q.device.type == "cpu" and (dense_ok or any(t.requires_grad for t in (q, k, v))):
        dense = neighborhood_dense_mask(height, width, kernel_size, q.device)
        out = F.scaled_dot_product_attention(q_, k_, v_, attn_mask=dense, scale=scale)
        return out.reshape(b, heads, height, width, v.shape[-1])
    mask = neighborhood_block_mask(height, width, kernel_size, q.device)
    if torch.compiler.is_compiling():  # inside a compiled model: the outer compile fuses the kernel
        out = flex_attention(q_, k_, v_, block_mask=mask, scale=scale)
    elif q.device.type == "cuda" and _compile_on_cuda:
        out = _compiled_flex()(q_, k_, v_, block_mask=mask, scale=scale)
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
            out = flex_attention(q_, k_, v_, block_mask=mask, scale=scale)
    return out.reshape(b, heads, height, width, v.shape[-1])
