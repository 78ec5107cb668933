"""Shared by the training tests: tiny settings of each recipe, and training in-process with one thread."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd
import pytest
import torch

from lpmrf_bench.train.run import train

QUIET = ["progress=false", "val_every=0", "batch_size=4"]
TINY = {
    "posterior-mean": ["arch=swinir_tiny"],
    "vae": ["block_out_channels=8,16,16,16", "latent_channels=4", "layers_per_block=1", "layers_mid_block=1",
            "lpips_weight=0"],
    "pmrf": ["arch=hdit_tiny", "val_steps=2"],
    "latent-pmrf": ["arch=latent_flow_tiny", "val_steps=2"],
}


def tiny_train(recipe: str, out: Path, *sets: str, resume: bool = False):
    return train(recipe, None, [*QUIET, *TINY[recipe], *sets], None, out, resume)


def losses(run_dir: Path) -> pd.Series:
    return pd.read_parquet(run_dir / "loss.parquet").set_index("step")["loss"]


@contextlib.contextmanager
def single_thread():
    """Two threads on a shared 2-core machine run these tiny networks ~10x slower than one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def one_thread():
    """Every test of a module that imports this fixture runs single-threaded."""
    with single_thread():
        yield
