"""Contact sheets of a dataset: a glance that the right files were found and paired the right way round."""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from lpmrf_bench.data.base import Sample

BACKGROUND = 32
CAPTION_HEIGHT = 18


def _fit(image: np.ndarray, cell: int) -> np.ndarray:
    """`image` scaled to fit a cell x cell square (area-averaged down, nearest up), centred on the background."""
    h, w = image.shape[:2]
    scale = cell / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    out = np.full((cell, cell, 3), BACKGROUND, dtype=np.uint8)
    top, left = (cell - size[1]) // 2, (cell - size[0]) // 2
    out[top:top + size[1], left:left + size[0]] = resized
    return out


def _tile(sample: Sample, cell: int, paired: bool, caption: bool) -> np.ndarray:
    lq = sample.lq
    if sample.gt is not None and lq.shape[:2] != sample.gt.shape[:2]:
        # LQ shown at the GT's size, pixels repeated, so both halves show the same field of view
        lq = cv2.resize(lq, (sample.gt.shape[1], sample.gt.shape[0]), interpolation=cv2.INTER_NEAREST)
    parts = [_fit(lq, cell)]
    if paired:
        parts.append(_fit(sample.gt, cell) if sample.gt is not None else np.full((cell, cell, 3), BACKGROUND, np.uint8))
    tile = np.concatenate(parts, axis=1)
    if caption:
        strip = np.full((CAPTION_HEIGHT, tile.shape[1], 3), BACKGROUND, dtype=np.uint8)
        cv2.putText(strip, sample.image_id, (3, CAPTION_HEIGHT - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (230, 230, 230), 1, cv2.LINE_AA)
        tile = np.concatenate([tile, strip], axis=0)
    return tile


def contact_sheet(samples: Sequence[Sample], *, cell: int = 192, columns: int | None = None, gap: int = 4,
                  captions: bool = False) -> np.ndarray:
    """A uint8 RGB grid with one tile per sample: its LQ, and its GT to the right when any sample has one.

    Every image is fitted into a `cell` x `cell` square; `columns` defaults to a near-square grid of tiles.
    Size: rows * tile_h + (rows - 1) * gap by columns * tile_w + (columns - 1) * gap, where tile_w is
    `cell` (or 2 * `cell` when paired) and tile_h is `cell` (+ 18 px with captions).
    """
    if not samples:
        raise ValueError("a contact sheet needs at least one sample")
    paired = any(s.gt is not None for s in samples)
    columns = columns or math.ceil(math.sqrt(len(samples)))
    rows = math.ceil(len(samples) / columns)
    tiles = [_tile(s, cell, paired, captions) for s in samples]
    th, tw = tiles[0].shape[:2]
    sheet = np.full((rows * th + (rows - 1) * gap, columns * tw + (columns - 1) * gap, 3), BACKGROUND, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * (th + gap):r * (th + gap) + th, c * (tw + gap):c * (tw + gap) + tw] = tile
    return sheet
