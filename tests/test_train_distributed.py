"""torchrun: 2 CPU processes (gloo) with the same global batch train the same weights as 1 process.

Tolerance: each rank's gradient is the mean over its half of the batch and DDP averages the two, so sums are
taken in another order than in one process; after 3 AdamW steps the weights agree to within 1e-5 absolute
(measured here: see the assertion message), far below one step's change.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from _train_tiny import QUIET, TINY
from lpmrf_bench.models.checkpoint import load_checkpoint

SETS = [*QUIET, *TINY["posterior-mean"], "steps=3", "checkpoint_every=1", "lr=2e-3", "ema_decay=0.5", "keep_checkpoints=3"]


def _train(out: Path, nproc: int) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
    cmd = [*launcher, "-m", "lpmrf_bench", "train", "posterior-mean", "--out", str(out)]
    cmd += [a for s in SETS for a in ("--set", s)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LPMRF_BENCH_OFFLINE": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tmp_path):
    one, two = _train(tmp_path / "one", 1), _train(tmp_path / "two", 2)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("trained to step 3") == 1  # only rank 0 reports
    a, b = (load_checkpoint(p / "checkpoints/step-00000003")[0] for p in (tmp_path / "one", tmp_path / "two"))
    start = load_checkpoint(tmp_path / "one/checkpoints/step-00000001")[0]
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a if k.startswith(("model.", "ema.")))
    moved = max((a[k].float() - start[k].float()).abs().max().item() for k in a if k.startswith("model."))
    assert worst < 1e-5, f"largest weight difference {worst:.3g} (training moved weights by up to {moved:.3g})"
    assert moved > 1e-3
    log_one, log_two = (pd.read_parquet(p / "loss.parquet") for p in (tmp_path / "one", tmp_path / "two"))
    assert list(log_two["step"]) == [1, 2, 3]  # one writer: no duplicated rows
    assert log_two["loss"].to_numpy() == pytest.approx(log_one["loss"].to_numpy(), rel=1e-5)  # the global loss
    assert sorted(p.name for p in (tmp_path / "two/checkpoints").iterdir()) == ["step-00000001", "step-00000002", "step-00000003"]
