"""The dataset interface: a named, ordered collection of LQ images (with GT when paired).

Images are 8-bit RGB numpy arrays [H,W,3]; `conversions` records every change made on reading
(gray -> RGB, 16 -> 8 bit, RGBA flattened, ...) so `images.parquet` can say what each input really was.
A dataset that synthesises its LQ images (a degradation pipeline) puts the sampled parameters in `params`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass
class Sample:
    image_id: str
    lq: np.ndarray  # uint8 [H,W,3]
    gt: np.ndarray | None = None  # uint8 [H,W,3]
    conversions: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)


class Dataset(Protocol):
    """`name` and `split` go into the store; `image_ids` is the fixed order of the set."""

    name: str
    split: str
    paired: bool
    resolution: int | None  # square side of the images, None when sizes vary
    expected_count: int | None

    def image_ids(self) -> Sequence[str]: ...

    def load(self, image_id: str) -> Sample: ...


class DatasetError(RuntimeError):
    """A dataset cannot be used as given (missing folder, LQ/GT names that do not match, ...)."""
