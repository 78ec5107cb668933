"""Shared test set-up: offline, a private weight cache, and real photographs from scikit-image."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from lpmrf_bench.imageio import write_png


@pytest.fixture(autouse=True)
def _offline_private_cache(request, tmp_path_factory, monkeypatch):
    """Never download; tests see an empty private weight cache, except `weights` tests, which need the real one."""
    monkeypatch.setenv("LPMRF_BENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if request.node.get_closest_marker("weights") is None:
        monkeypatch.setenv("LPMRF_BENCH_WEIGHTS", str(tmp_path_factory.mktemp("weights-cache")))


def photograph(name: str, size: int | None = None) -> np.ndarray:
    """A real RGB photograph shipped with scikit-image (gray ones replicated to 3 channels)."""
    image = getattr(skdata, name)()
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    if size is not None:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


PHOTOS = ("astronaut", "chelsea", "coffee", "camera")


@pytest.fixture(scope="session")
def photo_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, degraded, clean) for real photographs: noise + JPEG, a typical restoration input."""
    pairs = []
    rng = np.random.default_rng(1234)
    for name in PHOTOS:
        clean = photograph(name, 96)
        noisy = np.clip(clean + rng.normal(0, 10, clean.shape), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 40])
        degraded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        pairs.append((name, degraded, clean))
    return pairs


def write_pairs(root: Path, pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> Path:
    """(name, degraded, clean) pairs as a paired folder dataset: root/lq/<name>.png and root/gt/<name>.png."""
    for name, degraded, clean in pairs:
        write_png(root / "lq" / f"{name}.png", degraded)
        write_png(root / "gt" / f"{name}.png", clean)
    return root
