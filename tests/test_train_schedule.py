"""The learning-rate schedule: linear warm-up, then constant or a cosine to 0 at the last step."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from _train_tiny import one_thread, tiny_train  # noqa: F401  (one_thread is an autouse fixture)
from lpmrf_bench.train.loop import lr_factor
from lpmrf_bench.train.run import TrainError


def test_warm_up_is_linear_then_constant():
    assert [lr_factor(s, 4, 10, "constant") for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_factor(0, 0, 10, "constant") == 1.0


def test_cosine_halves_at_mid_decay_and_ends_at_zero():
    # warm-up 2 of 12 steps: the decay covers steps 2..12, its midpoint is step 7
    assert lr_factor(2, 2, 12, "cosine") == 1.0
    assert lr_factor(7, 2, 12, "cosine") == pytest.approx(0.5)
    assert lr_factor(12, 2, 12, "cosine") == pytest.approx(0.0)
    assert lr_factor(4, 2, 12, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))


def test_training_logs_the_cosine_learning_rate(tmp_path):
    tiny_train("posterior-mean", tmp_path / "run", "steps=6", "lr=0.01", "lr_schedule=cosine", "warmup_steps=0")
    logged = pd.read_parquet(tmp_path / "run" / "loss.parquet").set_index("step")["lr"]
    # the row of step s (1-based) is written after its update, when the scheduler already holds step s's rate
    expected = {s: 0.01 * 0.5 * (1 + math.cos(math.pi * s / 6)) for s in logged.index}
    assert logged.to_dict() == pytest.approx(expected, abs=1e-12)


def test_an_unknown_schedule_is_refused(tmp_path):
    with pytest.raises(TrainError, match="lr_schedule must be one of constant, cosine"):
        tiny_train("posterior-mean", tmp_path / "run", "steps=1", "lr_schedule=linear")
