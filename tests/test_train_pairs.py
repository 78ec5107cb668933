"""Training pairs: any rank/accumulation split covers the global batch once; folders of HQ images train."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _train_tiny import one_thread, tiny_train  # noqa: F401 (one_thread: autouse fixture)
from lpmrf_bench.data.degrade import DIFFACE, degrade
from lpmrf_bench.data.synthetic_faces import TrainingStream, generate_face
from lpmrf_bench.imageio import write_png
from lpmrf_bench.train.pairs import DatasetPairs, default_validation, micro_indices, open_pairs


@pytest.mark.parametrize("world, accum", [(1, 1), (2, 1), (1, 4), (2, 2), (4, 2)])
def test_every_split_covers_the_global_batch_once(world, accum):
    covered = [j for r in range(world) for m in range(accum) for j in micro_indices(3, 8, r, world, m, accum)]
    assert sorted(covered) == list(range(8))


def test_synthetic_pairs_are_the_training_stream_images():
    """Image g of the run is TrainingStream's image g of a batch-of-one stream: the same face and degradation."""
    pairs = open_pairs("synthetic-faces:train", "difface", seed=5)
    stream = TrainingStream(size=64, batch_size=4, seed=5)
    gt4, lq4 = stream.arrays(0)
    for i in range(4):
        gt, lq = pairs.pair(i)
        assert np.array_equal(gt, gt4[i]) and np.array_equal(lq, lq4[i])


def test_folder_pairs_reshuffle_per_epoch_and_degrade_by_index(tmp_path):
    for i in range(3):
        write_png(tmp_path / "hq" / f"{i}.png", generate_face(100 + i, 64))
    pairs = open_pairs(str(tmp_path / "hq"), "difface", seed=1)
    assert isinstance(pairs, DatasetPairs) and pairs.size == 64
    first_epoch = [pairs.pair(i) for i in range(3)]
    faces = {generate_face(100 + i, 64).tobytes() for i in range(3)}
    # every HQ image appears once per epoch (as the GT, up to the pipeline's flip / gray)
    seen = set()
    for g, (gt, lq) in enumerate(first_epoch):
        expect = [degrade(generate_face(100 + i, 64), DIFFACE.scaled_to(64), 1, f"train/{g}") for i in range(3)]
        match = [i for i, (lq_e, gt_e, _) in enumerate(expect) if np.array_equal(gt_e, gt) and np.array_equal(lq_e, lq)]
        assert len(match) == 1
        seen.add(match[0])
    assert seen == {0, 1, 2} and len(faces) == 3
    assert np.array_equal(pairs.pair(1)[1], first_epoch[1][1])  # a pure function of the index


def test_default_validation_follows_the_synthetic_size():
    assert default_validation("synthetic-faces-128:train") == "synthetic-faces-128:val"
    assert default_validation("synthetic-faces") == "synthetic-faces:val"
    assert default_validation("/data/ffhq") is None


def test_training_on_a_folder(tmp_path):
    for i in range(3):
        write_png(tmp_path / "hq" / f"{i}.png", generate_face(100 + i, 64))
    result = tiny_train("posterior-mean", tmp_path / "run", "steps=2", f"data={tmp_path / 'hq'}")
    assert result.progress.images_seen == 8 and (tmp_path / "run/export/model.safetensors").is_file()


@pytest.mark.slow
def test_worker_processes_give_the_same_training(tmp_path):
    tiny_train("posterior-mean", tmp_path / "inline", "steps=3")
    tiny_train("posterior-mean", tmp_path / "workers", "steps=3", "workers=2")
    a, b = (pd.read_parquet(tmp_path / n / "loss.parquet")["loss"] for n in ("inline", "workers"))
    assert a.tolist() == b.tolist()
