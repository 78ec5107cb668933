"""The embedded synthetic-face domain: procedural aligned faces, generated in memory from a seed.

No face data set can be downloaded on the machines this project must run on, so the default benchmark and
the embedded checkpoints use these faces. A face is a pure function of (seed, size): its attributes are
drawn by `sample_face_params` from one generator, its pixel texture from a second, both seeded from the face
seed. Splits are disjoint ranges of face seeds:

  train  seeds [0, 2^40)            streamed by `TrainingStream`; as a Dataset, its first 70,000 faces
  val    seeds 2^40 + 2^20 + i      256 pairs
  test   seeds 2^40 + i             300 pairs

Val/test (and train as a Dataset) are LQ/GT pairs degraded with DifFace's pipeline scaled to the size
(`DIFFACE.scaled_to(size)`), the degradation drawn from (face seed, image_id), so a pair never changes.
The same faces exist at every size: `synthetic-faces` is 64 px (the embedded default), and
`synthetic-faces-128`, `-256`, `-512` are the same seeds rendered larger, each a dataset of its own name so
that a run directory never mixes resolutions.
"""
from __future__ import annotations

import functools
import multiprocessing
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lpmrf_bench.data import DatasetSpec
from lpmrf_bench.data import synthetic_faces_features as features
from lpmrf_bench.data.base import DatasetError, Sample
from lpmrf_bench.data.degrade import DIFFACE, DegradationConfig, degrade
from lpmrf_bench.data.synthetic_faces_draw import Canvas, Head, background, body, hair, hair_colour, head_layer
from lpmrf_bench.data.synthetic_faces_params import FaceParams, sample_face_params

if TYPE_CHECKING:
    import torch

F32 = np.float32
TRAIN_SEEDS = 2**40  # train face seeds are [0, TRAIN_SEEDS)
# split -> (first face seed, image count as a Dataset)
SPLIT_SEEDS = {"test": (TRAIN_SEEDS, 300), "val": (TRAIN_SEEDS + 2**20, 256), "train": (0, 70_000)}
DEFAULT_SIZE = 64
_MIX = 0x9E3779B97F4A7C15 % TRAIN_SEEDS | 1  # odd, so index -> seed is a bijection modulo 2^40


def face_params(seed: int) -> FaceParams:
    return sample_face_params(np.random.default_rng([seed, 0]))


def render_face(params: FaceParams, size: int, seed: int) -> np.ndarray:
    """Render `params` at size x size; `seed` drives only the pixel-level texture (hair strands, skin, grain)."""
    if size < 16:
        raise ValueError(f"synthetic faces need at least 16 px, got {size}")

    def rng(layer: int) -> np.random.Generator:  # one stream per layer: an optional layer shifts no other
        return np.random.default_rng([seed, 1, size, layer])

    p, head = params, Head.of(params)
    c = Canvas.new(size, p.roll)
    background(c, p, rng(0))
    hair_rgb = hair_colour(c, p, head, rng(8))
    hair(c, p, head, hair_rgb, rng(1), front=False)
    body(c, p, head)
    face, face_sd = head_layer(c, p, head, rng(2))
    features.cheeks(c, p, head)
    features.nose(c, p, head)
    features.beard(face, p, head, face_sd, rng(3))
    features.mouth(c, p, head)
    for side, layer in ((-1, 4), (1, 5)):
        features.eye(c, p, head, side)
        features.brow(c, p, head, side, rng(layer))
    hair(c, p, head, hair_rgb, rng(6), front=True)
    features.glasses(c, p, head)
    # albedo x (shade x light colour + (1 - shade) x warm), the warm term because light scattered in skin is
    # redder; then gloss, sensor grain, and 8 bits (the 255 folded into the constants)
    warm = np.array([0.06, -0.03, -0.05], F32)
    light = c.shade[..., None] * ((np.asarray(p.light_tint, F32) * F32(1.25) - warm) * F32(255.0)) + warm * F32(255.0)
    img = c.albedo * light
    img += c.gloss[..., None] * F32(255.0) + F32(0.5)
    img += rng(7).standard_normal(img.shape, dtype=F32) * F32(255.0 * p.grain)
    return np.clip(img, 0, 255, out=img).astype(np.uint8)


def generate_face(seed: int, size: int = DEFAULT_SIZE) -> np.ndarray:
    """One aligned synthetic face, uint8 RGB [size, size, 3]; identical bits for identical (seed, size)."""
    return render_face(face_params(seed), size, seed)


def generate_faces(seeds: Sequence[int], size: int = DEFAULT_SIZE, workers: int = 0) -> Iterator[np.ndarray]:
    """`generate_face` of each seed, in order; `workers` > 0 renders them in that many spawned processes (the
    same bits: a face is a pure function of its seed), for sets large enough to repay the processes' start."""
    if workers <= 0:
        yield from (generate_face(seed, size) for seed in seeds)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(functools.partial(generate_face, size=size), seeds, chunksize=32)


def split_seed(split: str, index: int) -> int:
    """The face seed of image `index` of a split (train: of its first 70,000 as a Dataset)."""
    first, count = SPLIT_SEEDS[split]
    if not 0 <= index < count:
        raise DatasetError(f"synthetic-faces:{split} has images 0..{count - 1}, not {index}")
    return first + index


class SyntheticFaces:
    """A split of the synthetic-face domain as a paired Dataset (DifFace degradation at `size`), generated as each
    image is loaded."""

    paired = True

    def __init__(self, split: str, size: int = DEFAULT_SIZE):
        if split not in SPLIT_SEEDS:
            raise DatasetError(f"synthetic-faces has no split {split!r} (its splits: {', '.join(SPLIT_SEEDS)})")
        self.name = dataset_name(size)
        self.split = split
        self.resolution = size
        self.expected_count = SPLIT_SEEDS[split][1]
        self.config = DIFFACE.scaled_to(size)
        self._ids = [f"{split}/{i:06d}" for i in range(self.expected_count)]

    def image_ids(self) -> Sequence[str]:
        return self._ids

    def load(self, image_id: str) -> Sample:
        split, _, index = image_id.partition("/")
        if split != self.split or not index.isdigit() or image_id != f"{split}/{int(index):06d}":
            raise DatasetError(f"{self.name}:{self.split} has image_ids like {self._ids[0]!r}, not {image_id!r}")
        seed = split_seed(split, int(index))
        lq, gt, params = degrade(generate_face(seed, self.resolution), self.config, seed, image_id)
        return Sample(image_id=image_id, lq=lq, gt=gt, params={"face_seed": seed, **params.to_dict()})


def dataset_name(size: int) -> str:
    return "synthetic-faces" if size == DEFAULT_SIZE else f"synthetic-faces-{size}"


def open_synthetic_faces(size: int, split: str, root: Path | None = None) -> SyntheticFaces:
    """`DatasetSpec.open`: the data root is unused (nothing is read from disk)."""
    return SyntheticFaces(split, size)


def synthetic_faces_spec(size: int) -> DatasetSpec:
    return DatasetSpec(
        name=dataset_name(size), open=functools.partial(open_synthetic_faces, size), splits=("train", "val", "test"),
        paired=True, resolution=size, counts={s: n for s, (_, n) in SPLIT_SEEDS.items()},
        description=f"procedural aligned faces at {size} px, generated in memory, DifFace degradation scaled to "
                    f"{size} px (train is unbounded when streamed; as a dataset, its first 70,000)",
        source="generated (lpmrf_bench.data.synthetic_faces)", licence="Apache-2.0 (generated)")


SYNTHETIC_FACES = synthetic_faces_spec(64)
SYNTHETIC_FACES_128 = synthetic_faces_spec(128)
SYNTHETIC_FACES_256 = synthetic_faces_spec(256)
SYNTHETIC_FACES_512 = synthetic_faces_spec(512)


@dataclass
class TrainingStream:
    """Endless (gt, lq) batches of the train split, float [B,3,H,W] in [0,1], with fresh degradations.

    Batch `step` on `rank` holds the global images (step * world_size + rank) * batch_size + i, and image g is
    face seed (g * odd + offset(seed)) mod 2^40: no face repeats within 2^40 images, ranks never share one, and
    the union over ranks of a step is the same for any world_size at equal global batch. `workers` > 0 renders
    batches in that many spawned processes (same batches, same order; a script using them needs the usual
    `if __name__ == "__main__":` guard).
    """

    size: int = DEFAULT_SIZE
    batch_size: int = 32
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    workers: int = 0
    prefetch: int = 2  # batches in flight per worker
    config: DegradationConfig = DIFFACE  # the published pipeline, scaled to `size` here

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world_size {self.world_size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        self.config = self.config.scaled_to(self.size)
        self._offset = int(np.random.SeedSequence(self.seed).generate_state(1, np.uint64)[0]) % TRAIN_SEEDS

    def face_seeds(self, step: int) -> list[int]:
        first = (step * self.world_size + self.rank) * self.batch_size
        return [((first + i) * _MIX + self._offset) % TRAIN_SEEDS for i in range(self.batch_size)]

    def arrays(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(gt, lq) uint8 [B,H,W,3] of batch `step`: a pure function of (seed, step, rank, world_size, batch)."""
        pairs = [degrade(generate_face(s, self.size), self.config, self.seed, f"train/{s}")
                 for s in self.face_seeds(step)]
        return np.stack([gt for _, gt, _ in pairs]), np.stack([lq for lq, _, _ in pairs])

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _to_tensors(self.arrays(step))

    def iterate(self, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches start_step, start_step + 1, ... (resuming training at a step replays the same data)."""
        if self.workers <= 0:
            step = start_step
            while True:
                yield self.batch(step)
                step += 1
        with multiprocessing.get_context("spawn").Pool(self.workers) as pool:
            pending: deque = deque()
            step = start_step
            while True:
                while len(pending) < self.workers * self.prefetch:
                    pending.append(pool.apply_async(self.arrays, (step,)))
                    step += 1
                yield _to_tensors(pending.popleft().get())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate(0)


def _to_tensors(arrays: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    import torch  # here, not at the top: `list datasets` imports this module and should not pay for torch

    gt, lq = (torch.from_numpy(a).permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
              .div_(255.0) for a in arrays)
    return gt, lq
