"""Reading a dataset in batches for restoration: prefetched, failures kept per image, same sizes together."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from lpmrf_bench.data.base import Dataset, DatasetError, Sample
from lpmrf_bench.imageio import ImageReadError


def to_tensor(images: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 [H,W,3] arrays -> uint8 [B,3,H,W] on the device."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(device)


def load_batches(dataset: Dataset, ids: list[str], batch_size: int) -> Iterator[tuple[list[Sample], dict[str, str]]]:
    """Yield (samples, read errors) per batch, reading the next batch in a thread while this one runs."""

    def read(chunk: list[str]) -> tuple[list[Sample], dict[str, str]]:
        samples, errors = [], {}
        for image_id in chunk:
            try:
                samples.append(dataset.load(image_id))
            except (ImageReadError, DatasetError, ValueError, OSError) as exc:
                errors[image_id] = str(exc)
        return samples, errors

    chunks = [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read, chunks[0]) if chunks else None
        for i in range(len(chunks)):
            result = pending.result()
            pending = pool.submit(read, chunks[i + 1]) if i + 1 < len(chunks) else None
            yield result


def group_by_shape(samples: list[Sample]) -> list[list[Sample]]:
    """Split a batch into groups whose LQ (and GT) sizes agree, so each group stacks into one tensor."""
    groups: dict[tuple, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[(s.lq.shape, None if s.gt is None else s.gt.shape)].append(s)
    return list(groups.values())
