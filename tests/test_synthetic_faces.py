"""The synthetic-face domain: determinism, disjoint splits, paired val/test sets, variety, the training stream."""
from __future__ import annotations

import dataclasses
import itertools

import cv2
import numpy as np
import pytest
from scipy.stats import spearmanr

from lpmrf_bench.data.base import DatasetError
from lpmrf_bench.data.degrade import DIFFACE, degrade
from lpmrf_bench.data.synthetic_faces import (
    SPLIT_SEEDS, SYNTHETIC_FACES, SYNTHETIC_FACES_256, TRAIN_SEEDS, SyntheticFaces, TrainingStream, face_params,
    generate_face, generate_faces, render_face, split_seed,
)
from lpmrf_bench.data.synthetic_faces_params import BACKGROUNDS, HAIR_STYLES


@pytest.fixture(scope="module")
def faces64() -> list[tuple[object, np.ndarray]]:
    """200 faces at 64 px with their attributes (the sample for the variety checks)."""
    return [(face_params(s), generate_face(s, 64)) for s in range(200)]


@pytest.mark.parametrize("size", [64, 128, 256])
def test_shape_dtype_and_determinism(size):
    a, b = generate_face(7, size), generate_face(7, size)
    assert a.shape == (size, size, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert a.std() > 20  # not a blank image


def test_different_seeds_differ(faces64):
    images = [img.astype(np.float32) for _, img in faces64[:12]]
    for x, y in itertools.combinations(images, 2):
        assert np.abs(x - y).mean() > 8


def test_attributes_do_not_depend_on_size():
    small, large = generate_face(3, 64).astype(np.float32), generate_face(3, 256).astype(np.float32)
    down = large.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
    other = generate_face(4, 64).astype(np.float32)
    assert np.abs(down - small).mean() < 0.5 * np.abs(other - small).mean()


def test_splits_are_disjoint_seed_ranges():
    ranges = {split: range(split_seed(split, 0), split_seed(split, count - 1) + 1)
              for split, (_, count) in SPLIT_SEEDS.items()}
    assert len(ranges["test"]) == 300 and len(ranges["val"]) == 256
    for (a, ra), (b, rb) in itertools.combinations(ranges.items(), 2):
        assert set(ra).isdisjoint(rb), (a, b)
    assert ranges["train"].stop <= TRAIN_SEEDS <= min(ranges["test"].start, ranges["val"].start)
    stream = TrainingStream(batch_size=64, seed=5)
    assert all(0 <= s < TRAIN_SEEDS for step in range(3) for s in stream.face_seeds(step))
    with pytest.raises(DatasetError, match="0..299"):
        split_seed("test", 300)


def test_test_split_pairs_are_deterministic_and_degraded():
    ds = SYNTHETIC_FACES.open("test", None)
    assert (ds.name, ds.split, ds.resolution, ds.expected_count) == ("synthetic-faces", "test", 64, 300)
    ids = ds.image_ids()
    assert len(ids) == 300 and ids[123] == "test/000123"
    first, again = ds.load(ids[123]), SyntheticFaces("test").load(ids[123])
    assert np.array_equal(first.lq, again.lq) and np.array_equal(first.gt, again.gt)
    assert first.params == again.params and first.params["face_seed"] == split_seed("test", 123)
    assert first.lq.shape == first.gt.shape == (64, 64, 3) and first.lq.dtype == np.uint8
    assert not np.array_equal(first.lq, first.gt)
    # the pair is the published pipeline applied to the face of that seed, replayable from its parameters
    lq, gt, params = degrade(generate_face(first.params["face_seed"], 64), DIFFACE.scaled_to(64),
                             first.params["face_seed"], "test/000123")
    assert np.array_equal(lq, first.lq) and np.array_equal(gt, first.gt) and params.to_dict()["size"] == 64


@pytest.mark.slow
def test_faces_rendered_in_worker_processes_are_the_same_bits_in_the_same_order():
    seeds = [split_seed("train", i) for i in (65_000, 3, 65_001, 17, 9)]
    spawned = list(generate_faces(seeds, 64, workers=2))
    assert len(spawned) == len(seeds)
    for seed, face in zip(seeds, spawned):
        assert np.array_equal(face, render_face(face_params(seed), 64, seed))


def test_val_split_and_larger_size():
    val = SyntheticFaces("val")
    assert val.expected_count == 256 and val.image_ids()[-1] == "val/000255"
    a, b = val.load("val/000000"), SyntheticFaces("test").load("test/000000")
    assert a.params["face_seed"] != b.params["face_seed"] and not np.array_equal(a.gt, b.gt)
    big = SYNTHETIC_FACES_256.open("val", None)
    assert big.name == "synthetic-faces-256" and big.load("val/000001").lq.shape == (256, 256, 3)


def test_bad_image_ids_are_refused():
    ds = SyntheticFaces("test")
    with pytest.raises(DatasetError, match="test/000000"):
        ds.load("val/000001")
    with pytest.raises(DatasetError, match="0..299"):
        ds.load("test/000300")
    with pytest.raises(DatasetError, match="no split"):
        SyntheticFaces("holdout")


def _cheek_luminance(img: np.ndarray) -> float:
    """Mean luma of two patches below the eyes, where no hair, brow, glasses or beard is drawn."""
    s = img.shape[0]
    rows = slice(int(0.565 * s), int(0.62 * s))
    patches = [img[rows, int(x0 * s):int(x1 * s)] for x0, x1 in ((0.37, 0.42), (0.58, 0.63))]
    return float(np.mean([p.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) for p in patches]))


def test_skin_tones_span_a_wide_range_and_follow_melanin(faces64):
    luma = np.array([_cheek_luminance(img) for _, img in faces64])
    melanin = np.array([p.melanin for p, _ in faces64])
    assert np.percentile(luma, 95) - np.percentile(luma, 5) > 90
    assert spearmanr(melanin, luma).statistic < -0.7


def test_attributes_vary(faces64):
    params = [p for p, _ in faces64]
    kinds = {k: sum(p.background == k for p in params) for k in BACKGROUNDS}
    assert all(10 < n < 100 for n in kinds.values()), kinds
    assert set(p.hair_style for p in params) == set(HAIR_STYLES)
    assert 0.1 < np.mean([p.glasses for p in params]) < 0.3
    assert 0.15 < np.mean([p.beard != "none" for p in params]) < 0.5
    assert len({p.iris for p in params}) >= 5 and len({p.hair for p in params}) >= 7
    assert np.ptp([p.yaw for p in params]) > 0.6


def test_backgrounds_differ_in_texture(faces64):
    """A flat background is flat in the pixels (only grain); the other kinds are not, in most faces."""
    spread = {k: [] for k in BACKGROUNDS}
    for p, img in faces64:
        strips = np.concatenate([img[:22, :5], img[:22, -5:]]).astype(np.float64)  # background only
        spread[p.background].append(strips.std(axis=(0, 1)).mean())
    assert np.median(spread["flat"]) < 4
    for kind in ("gradient", "textured", "bokeh"):
        assert np.mean(np.array(spread[kind]) > 4) > 0.5, kind


def test_glasses_and_beard_change_the_pixels():
    base = face_params(11)
    plain = dataclasses.replace(base, glasses=False, beard="none")
    ref = render_face(plain, 128, 11).astype(np.float32)
    eyes = (slice(44, 66), slice(34, 94))
    chin = (slice(95, 120), slice(40, 88))
    with_glasses = render_face(dataclasses.replace(plain, glasses=True), 128, 11).astype(np.float32)
    with_beard = render_face(dataclasses.replace(plain, beard="beard"), 128, 11).astype(np.float32)
    assert np.abs(with_glasses - ref)[eyes].mean() > 3 and np.abs(with_glasses - ref)[chin].mean() == 0
    assert np.abs(with_beard - ref)[chin].mean() > 10 and np.abs(with_beard - ref)[eyes].mean() == 0


def test_stream_is_deterministic_per_seed_step_rank():
    a, b = TrainingStream(batch_size=4, seed=3), TrainingStream(batch_size=4, seed=3)
    gt, lq = a.batch(2)
    gt2, lq2 = b.batch(2)
    assert gt.shape == lq.shape == (4, 3, 64, 64) and gt.dtype == lq.dtype and gt.is_contiguous()
    assert 0.0 <= float(lq.min()) and float(lq.max()) <= 1.0
    assert bool((gt == gt2).all()) and bool((lq == lq2).all())
    assert not bool((a.batch(3)[0] == gt).all())
    assert set(TrainingStream(batch_size=4, seed=4).face_seeds(2)).isdisjoint(a.face_seeds(2))
    assert not np.allclose(gt.numpy(), lq.numpy())


def test_stream_ranks_are_disjoint_and_cover_the_global_batch():
    ranks = [TrainingStream(batch_size=3, seed=1, rank=r, world_size=2) for r in range(2)]
    seen = [set(itertools.chain.from_iterable(s.face_seeds(step) for step in range(20))) for s in ranks]
    assert len(seen[0]) == len(seen[1]) == 60 and seen[0].isdisjoint(seen[1])
    single = TrainingStream(batch_size=6, seed=1)
    for step in range(5):
        assert set(ranks[0].face_seeds(step)) | set(ranks[1].face_seeds(step)) == set(single.face_seeds(step))
    assert not bool((ranks[0].batch(0)[0] == ranks[1].batch(0)[0]).all())
    with pytest.raises(ValueError, match="world_size"):
        TrainingStream(rank=2, world_size=2)


@pytest.mark.slow
def test_stream_workers_give_the_same_batches():
    stream = TrainingStream(batch_size=2, seed=9, workers=1, prefetch=1)
    batches = stream.iterate(start_step=4)
    for step in (4, 5):
        gt, lq = next(batches)
        ref_gt, ref_lq = stream.batch(step)
        assert bool((gt == ref_gt).all()) and bool((lq == ref_lq).all())
    batches.close()


def test_eyes_sit_on_the_ffhq_template():
    """Frontal faces put their pupils (the darkest pixels near each eye) on facexlib's 512 template eye centres."""
    template = np.array([[192.98138, 239.94708], [318.90277, 240.1936]]) / 2  # at 256 px
    for seed in range(8):
        p = dataclasses.replace(face_params(seed), yaw=0.0, roll=0.0, gaze=(0.0, 0.0), eye_dy=0.0, glasses=False,
                                eye_tilt=0.0, lash=0.0, light=(0.0, 0.0, 1.0))  # nothing darker than the pupil
        luma = render_face(p, 256, seed).astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        found = []
        for cx, cy in template:
            r0, c0 = int(cy) - 10, int(cx) - 14
            window = luma[r0:r0 + 21, c0:c0 + 29]
            rows, cols = np.nonzero(window <= np.percentile(window, 2))
            found.append((cols.mean() + c0, rows.mean() + r0))
        assert np.abs(np.array(found) - template).max() < 2.0, (seed, found)


def test_texture_is_random_given_the_attributes():
    """Skin pores, strands and grain are not fixed by the face's attributes, so the mean over texture seeds (what
    a posterior-mean restorer converges to) has clearly less fine detail than any one face."""
    for seed in range(4):
        p = face_params(seed)
        faces = np.stack([render_face(p, 128, 1000 + k) for k in range(8)]).astype(np.float32)
        detail = [np.abs(cv2.Laplacian(x, cv2.CV_32F)).mean() for x in faces]
        assert np.abs(cv2.Laplacian(faces.mean(axis=0), cv2.CV_32F)).mean() < 0.8 * min(detail), seed
