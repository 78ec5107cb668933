"""Training checkpoints: everything a run needs to continue bit for bit, written so a kill never corrupts one.

A checkpoint is a folder `checkpoints/step-NNNNNNNN/` in our safetensors + config format
(`models.checkpoint`): tensors `model.*`, `ema.*`, `optimizer.<param>.<name>`, `rng.*`; the config holds the
step, the data position (the next global image index; images are a pure function of it), wall time, the
optimiser's param groups, the scheduler's state and the run's resolved settings. It is written into a hidden
temporary folder and renamed into place, so readers see a whole checkpoint or none; older ones beyond `keep` are
deleted only after the new one is in place.
"""
from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lpmrf_bench.models.checkpoint import is_checkpoint, load_checkpoint, save_checkpoint

KIND = "lpmrf-bench-train-state"
PREFIX = "step-"


@dataclass
class Progress:
    step: int = 0  # optimiser steps done
    wall_s: float = 0.0  # training wall time so far, over every invocation
    images_seen: int = 0


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    return {f"optimizer.{index}.{name}": value for index, state in optimizer.state_dict()["state"].items()
            for name, value in state.items()}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in groups]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save(run_dir: Path, model: nn.Module, ema: nn.Module, optimizer: torch.optim.Optimizer,
         scheduler: torch.optim.lr_scheduler.LRScheduler, progress: Progress, recipe: str, settings: dict[str, Any],
         keep: int) -> Path:
    """Write the checkpoint of `progress.step` atomically, then delete all but the newest `keep`."""
    folder = checkpoint_dir(run_dir)
    final = folder / f"{PREFIX}{progress.step:08d}"
    tmp = folder / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
    tensors = {**{f"model.{k}": v for k, v in model.state_dict().items()},
               **{f"ema.{k}": v for k, v in ema.state_dict().items()},
               **_optimizer_tensors(optimizer), "rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    config: dict[str, Any] = {
        "kind": KIND, "recipe": recipe, "settings": settings, "step": progress.step, "wall_s": progress.wall_s,
        "images_seen": progress.images_seen, "data_position": {"next_image": progress.images_seen},
        "optimizer_param_groups": optimizer.state_dict()["param_groups"], "scheduler": scheduler.state_dict(),
    }
    try:
        save_checkpoint(tmp, tensors, config)
        if final.exists():  # the same step saved before a kill: replace it whole
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in complete_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint folders whose save finished, oldest first (temporary folders of killed saves are ignored)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and is_checkpoint(p)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def sweep_temporary(run_dir: Path) -> None:
    """Remove the temporary folders a killed save left behind."""
    folder = checkpoint_dir(run_dir)
    if folder.is_dir():
        for p in folder.glob(f".{PREFIX}*.tmp"):
            shutil.rmtree(p, ignore_errors=True)


def load_latest(run_dir: Path, model: nn.Module, ema: nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler) -> Progress | None:
    """Restore the newest complete checkpoint into the given objects; None when there is none."""
    found = complete_checkpoints(run_dir)
    if not found:
        return None
    tensors, config = load_checkpoint(found[-1])
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    _restore_optimizer(optimizer, tensors, config["optimizer_param_groups"])  # moves state to the params' device
    scheduler.load_state_dict(config["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return Progress(int(config["step"]), float(config["wall_s"]), int(config["images_seen"]))
