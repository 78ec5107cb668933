"""Reference feature sets for set-level metrics: computed once per (name, extractor), cached in the user's cache.

A reference is the features of a set of real images under one extractor, with a content hash of the images
(their names and bytes, in order) so that a stored value says exactly what it was compared with.

- `synthetic-faces:ref` (and `synthetic-faces-<size>:ref`): the embedded domain's reference, 5000 HQ faces
  at the set's size, the train split's images 65,000..69,999 (disjoint from test and val, which use other
  face seeds), generated and embedded on first use.
- any other name: made by `lpmrf-bench ref-stats NAME DIR` from a folder of images.
- `ground-truth`: a run's own ground truth (the paired dataset's GT features that the run stored), built by
  set_scoring from the run directory; it has no cache entry and is refused outside a run.
- published statistics, resolved like weights: `ffhq-512` for `inception-pyiqa` is clean-fid's FFHQ 512 train+val
  70k (`ffhq_clean_trainval70k_512.npz`: mean and covariance, used for FID as published; `_kid.npz`: the
  features, used for KID), unless a `ref-stats` one is cached under that name.

Cache: `LPMRF_BENCH_REFERENCES`, default `~/.cache/lpmrf-bench/references`; one `.npz` per (name, extractor)
holding float32 features [N, D] and the JSON metadata. Never inside the installed package.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from lpmrf_bench.atomic import atomic_write
from lpmrf_bench.environment import usable_cores
from lpmrf_bench.metrics.distribution import feature_statistics
from lpmrf_bench.metrics.extractors import FeatureExtractor
from lpmrf_bench.published import FFHQ512_CLEAN_KID, FFHQ512_CLEAN_STATS
from lpmrf_bench.weights import WeightFile, WeightsError, resolve, sha256_of

T = TypeVar("T")
CACHE_ENV = "LPMRF_BENCH_REFERENCES"
SYNTHETIC_REF_FIRST, SYNTHETIC_REF_COUNT = 65_000, 5_000
_SYNTHETIC = re.compile(r"^(synthetic-faces(?:-(\d+))?):ref$")
GROUND_TRUTH_REFERENCE = "ground-truth"  # a run's own ground-truth features (set_scoring builds it)


class ReferenceMissingError(RuntimeError):
    """The named reference is neither cached nor computable here; the message says how to make it."""


@dataclass(frozen=True)
class Reference:
    name: str
    extractor: str  # the extractor's spec string
    features: np.ndarray  # float64 [N, D]
    content_hash: str  # sha256 over the images' names and bytes, in order
    source: str  # how it was made (generator and range, or the folder)
    published_statistics: tuple[np.ndarray, np.ndarray] | None = None  # a published mean and covariance

    @property
    def n(self) -> int:
        return int(self.features.shape[0])

    @functools.cached_property
    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance: the published ones where given, else of the features (computed once)."""
        return self.published_statistics or feature_statistics(self.features)

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """A value derived from this reference alone (e.g. KID's subset draws for a set size), computed once."""
        memos = self.__dict__.setdefault("_memos", {})
        if key not in memos:
            memos[key] = compute()
        return memos[key]


PUBLISHED: dict[tuple[str, str], tuple[WeightFile, WeightFile]] = {  # (name, extractor) -> (mu/sigma, features)
    ("ffhq-512", "inception-pyiqa"): (FFHQ512_CLEAN_STATS, FFHQ512_CLEAN_KID),
}


def published_reference(name: str, extractor: FeatureExtractor) -> Reference | None:
    """A published statistics pair for (name, extractor) through the weights resolver; None if there is none."""
    files = PUBLISHED.get((name, extractor.name))
    if files is None:
        return None
    try:
        stats_path, kid_path = (resolve(f) for f in files)
    except WeightsError as exc:
        raise ReferenceMissingError(str(exc)) from exc
    with np.load(stats_path, allow_pickle=False) as stats, np.load(kid_path, allow_pickle=False) as kid:
        mu, sigma = stats["mu"].astype(np.float64), stats["sigma"].astype(np.float64)
        feats = kid["feats"].astype(np.float64)
    if mu.shape != (extractor.dim,) or sigma.shape != (extractor.dim,) * 2 or feats.shape[1:] != (extractor.dim,):
        raise ReferenceMissingError(f"{stats_path.name}, {kid_path.name}: not {extractor.dim}-d statistics "
                                    f"(mu {mu.shape}, sigma {sigma.shape}, feats {feats.shape})")
    content = hashlib.sha256((sha256_of(stats_path) + sha256_of(kid_path)).encode()).hexdigest()
    source = f"published: {files[0].source} (mu, sigma) and {files[1].source} (features)"
    return Reference(name, extractor.spec, feats, content, source, (mu, sigma))


def cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lpmrf-bench" / "references"


def cache_path(name: str, extractor: FeatureExtractor) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return cache_dir() / f"{safe}__{hashlib.sha256(extractor.spec.encode()).hexdigest()[:12]}.npz"


def embed_images(images: Iterator[tuple[str, np.ndarray]], extract: Callable[[torch.Tensor], torch.Tensor],
                 batch_size: int = 64) -> tuple[np.ndarray, str]:
    """Features of (name, uint8 HxWx3) images in batches of one size, and the sha256 of their names and bytes."""
    digest = hashlib.sha256()
    chunks: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            tensor = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous()
            chunks.append(extract(tensor).numpy())
            batch.clear()

    for name, image in images:
        digest.update(name.encode() + b"\0" + np.ascontiguousarray(image).tobytes())
        if batch and batch[0].shape != image.shape:
            flush()
        batch.append(image)
        if len(batch) == batch_size:
            flush()
    flush()
    if not chunks:
        raise ReferenceMissingError("the reference has no images")
    return np.concatenate(chunks).astype(np.float64), digest.hexdigest()


def save(reference: Reference, extractor: FeatureExtractor) -> Path:
    meta = {"name": reference.name, "extractor": reference.extractor, "content_hash": reference.content_hash,
            "source": reference.source, "n": reference.n}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, features=reference.features.astype(np.float32), meta=np.array(json.dumps(meta)))

    return atomic_write(cache_path(reference.name, extractor), write)


def load_cached(name: str, extractor: FeatureExtractor) -> Reference | None:
    path = cache_path(name, extractor)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        feats = data["features"].astype(np.float64)
    if meta["extractor"] != extractor.spec:
        raise ReferenceMissingError(f"{path} holds features of {meta['extractor']}, not {extractor.spec}; delete it")
    return Reference(meta["name"], meta["extractor"], feats, meta["content_hash"], meta["source"])


def synthetic_reference(name: str, size: int, extract: Callable[[torch.Tensor], torch.Tensor],
                        extractor: FeatureExtractor) -> Reference:
    from lpmrf_bench.data.synthetic_faces import generate_faces, split_seed

    indices = range(SYNTHETIC_REF_FIRST, SYNTHETIC_REF_FIRST + SYNTHETIC_REF_COUNT)
    workers = render_workers(len(indices))
    faces = generate_faces([split_seed("train", i) for i in indices], size, workers)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads - workers))  # OpenMP threads sharing cores with the renderers spin idle
    try:
        feats, content = embed_images(((f"train/{i:06d}", face) for i, face in zip(indices, faces)), extract)
    finally:
        torch.set_num_threads(threads)
    source = f"synthetic faces at {size} px, train images {indices.start}..{indices.stop - 1} (HQ, generated)"
    return Reference(name, extractor.spec, feats, content, source)


def render_workers(count: int) -> int:
    """Processes rendering a synthetic reference while this one embeds it: one per 500 faces (each costs about
    a second to start), at most one per core this process may use."""
    return min(usable_cores(), count // 500)


def synthetic_size(name: str) -> int | None:
    """The image size of an embedded synthetic-face reference name, or None for other names."""
    match = _SYNTHETIC.match(name)
    if not match:
        return None
    return int(match.group(2)) if match.group(2) else 64


def get_reference(name: str, extractor: FeatureExtractor, extract: Callable[[torch.Tensor], torch.Tensor] | None,
                  ) -> Reference:
    """The cached reference, computing (and caching) the embedded synthetic ones on first use."""
    if name == GROUND_TRUTH_REFERENCE:
        raise ReferenceMissingError(f"reference {name!r} is the ground truth stored in a run: use it with "
                                    "`run --set-reference ground-truth` or `rescore RUN --reference ground-truth`")
    cached = load_cached(name, extractor) or published_reference(name, extractor)
    if cached is not None:
        return cached
    size = synthetic_size(name)
    if size is None:
        raise ReferenceMissingError(
            f"reference {name!r} is not cached for {extractor.name} features ({cache_path(name, extractor)}); "
            f"make it with `lpmrf-bench ref-stats {name} DIR --extractor {extractor.name}`")
    if extract is None:
        raise ReferenceMissingError(f"reference {name!r} is not cached yet and no extractor was given to compute it")
    reference = synthetic_reference(name, size, extract, extractor)
    save(reference, extractor)
    return reference


def default_reference(dataset_name: str) -> str | None:
    """The reference a dataset is scored against by default (`<synthetic set>:ref`; `ffhq-512` for the rest)."""
    if _SYNTHETIC.match(f"{dataset_name}:ref"):
        return f"{dataset_name}:ref"
    return "ffhq-512"
