"""Neighborhood attention with NATTEN semantics: tiled dense attention on the CPU, `flex_attention` elsewhere.

Each query at (i, j) attends to the k x k window of keys centred on it, except near the borders, where the
window is shifted inward so that it stays inside the map (never zero-padded): for odd k and r = k // 2 the
window rows are [clamp(i - r, 0, H - k), clamp(i - r, 0, H - k) + k). No dilation, no relative position bias.
This is what PMRF's HDiT gets from `natten.functional.na2d`, without the natten install.

On the CPU the map is cut into small query tiles; each tile attends, with a mask, to the smallest key region
that holds every window of its queries, so a k = 3 layer scores 36 keys per query instead of all H*W (at 32x32
tokens 2.5x faster than SDPA under a dense window mask, 4x with the backward; benchmarks/cpu_inference.py).
On CUDA the flex kernel is compiled (its eager path materialises the full score matrix); `set_compile(False)`
turns that off. The flex block mask depends only on (H, W, kernel, device), so it is built once and cached; a
model compiled after one eager call reads it as a constant (compiled first, the mask build is traced into the
graph). Both paths are exact: tests compare each with an explicit per-query loop.
"""
from __future__ import annotations

import functools
import math
import warnings

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

_compile_on_cuda = True

# Query tile side of the CPU path: a k = 3 layer then scores 36 keys per query. Of 4, 6, 8, 12 and 16 (2-core CPU,
# forward), 4 was the fastest for k = 3 at 16x16 and 32x32 and k = 7 at 32x32, and within 6% of the fastest (8)
# for k = 7 at 64x64 and 128x128.
CPU_QUERY_TILE = 4


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


def axis_tiling(size: int, kernel_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Along one axis: query rows [n, T] of each tile, key rows [n, L] of its region, the in-window mask
    [n, T, L], and for every index the tile that computes it and its slot there.

    Tiles start at multiples of T, the last one shifted back to end at the border (it may overlap its
    neighbour; both compute the shared rows identically). A tile's region starts at its first query's window
    start (moved back if it would run past the border) and is L = T + k - 1 long: window starts grow by at
    most one per row, so the region holds every window of the tile.
    """
    t = min(CPU_QUERY_TILE, size)
    n = math.ceil(size / t)
    query_start = (torch.arange(n) * t).clamp(max=size - t)
    length = min(t + kernel_size - 1, size)
    key_start = window_start(query_start, size, kernel_size).clamp(max=size - length)
    query_rows = query_start[:, None] + torch.arange(t)
    key_rows = key_start[:, None] + torch.arange(length)
    first = window_start(query_rows, size, kernel_size)[:, :, None]
    in_window = (key_rows[:, None, :] >= first) & (key_rows[:, None, :] < first + kernel_size)
    index = torch.arange(size)
    owner = (index // t).clamp(max=n - 1)
    return tuple(x.to(device) for x in (query_rows, key_rows, in_window, owner, index - query_start[owner]))


@functools.lru_cache(maxsize=32)
def tile_plan(
    height: int, width: int, kernel_size: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices into the flattened H*W tokens for the CPU path: each tile's queries [tiles * T*T] and key region
    [tiles * L*L], the additive mask [tiles, T*T, L*L] (0 in a query's window, -inf outside), and for every
    token its row in the tiles' output [H*W]. Built outside inference mode, so that a plan first made during
    inference can also serve a pass that is differentiated (index_select saves its index for the backward)."""
    with torch.inference_mode(False):
        q_rows, k_rows, rows_in, row_tile, row_slot = axis_tiling(height, kernel_size, device)
        q_cols, k_cols, cols_in, col_tile, col_slot = axis_tiling(width, kernel_size, device)
        (ny, ty, ly), (nx, tx, lx) = rows_in.shape, cols_in.shape

        def flat(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:  # [ny, r], [nx, c] -> [ny*nx*r*c]
            return (rows[:, None, :, None] * width + cols[None, :, None, :]).flatten()

        allowed = rows_in[:, None, :, None, :, None] & cols_in[None, :, None, :, None, :]
        allowed = allowed.reshape(ny * nx, ty * tx, ly * lx)
        bias = torch.zeros(allowed.shape, device=device, dtype=dtype).masked_fill(~allowed, float("-inf"))
        tile = row_tile[:, None] * nx + col_tile[None, :]
        output_rows = (tile * ty + row_slot[:, None]) * tx + col_slot[None, :]
        return flat(q_rows, q_cols), flat(k_rows, k_cols), bias, output_rows.flatten()


def tiled_neighborhood_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int, scale: float | None = None
) -> torch.Tensor:
    """The CPU path: masked dense attention of each query tile over its key region (shapes as below)."""
    _check(q, k, v, kernel_size)
    b, heads, height, width, d = q.shape
    scale = d**-0.5 if scale is None else scale
    query_index, key_index, bias, output_rows = tile_plan(height, width, kernel_size, q.device, q.dtype)
    tiles, queries, keys = bias.shape

    def gather(x: torch.Tensor, index: torch.Tensor, per_tile: int) -> torch.Tensor:
        """[B, heads, H, W, e] -> [B, heads, tiles, per_tile, e]."""
        flat = x.reshape(b, heads, height * width, x.shape[-1])
        return flat.index_select(2, index).view(b, heads, tiles, per_tile, x.shape[-1])

    scores = (gather(q, query_index, queries) * scale) @ gather(k, key_index, keys).transpose(-1, -2)
    out = (scores + bias).softmax(-1) @ gather(v, key_index, keys)  # [B, heads, tiles, T*T, e]
    out = out.reshape(b, heads, tiles * queries, v.shape[-1]).index_select(2, output_rows)
    return out.view(b, heads, height, width, v.shape[-1])


def flex_neighborhood_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int, scale: float | None = None
) -> torch.Tensor:
    """The GPU path: `flex_attention` with the neighborhood block mask (compiled on CUDA unless turned off)."""
    _check(q, k, v, kernel_size)
    b, heads, height, width, _ = q.shape
    q_, k_, v_ = (t.reshape(b, heads, height * width, t.shape[-1]) for t in (q, k, v))
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
    attention has already scaled q and k). CPU tensors take the tiled path, others flex.
    """
    if q.device.type == "cpu" and not torch.compiler.is_compiling():
        return tiled_neighborhood_attention(q, k, v, kernel_size, scale)
    return flex_neighborhood_attention(q, k, v, kernel_size, scale)
