"""Our checkpoint format, shared by PMRF, Latent-PMRF and training: a folder with `model.safetensors` and
`config.json`.

The config records what is needed to rebuild and run the weights: architecture names and fields, the flow's
`time_convention` ("t" or "sigma") and `time_scale` (multiplier from the convention's time to the network
input), and the names and sha256 of the weight files it depends on. Files are written to a temporary name
and renamed, so a killed save never leaves a half-written file under the real name.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from lpmrf_bench.atomic import atomic_write

FORMAT = "lpmrf-bench-checkpoint/1"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as is; the message names the file and the fix."""


def is_checkpoint(folder: str | os.PathLike) -> bool:
    """True for a folder written by `save_checkpoint` (its config.json carries our format tag)."""
    config = Path(folder) / CONFIG_NAME
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("format") == FORMAT
    except (json.JSONDecodeError, AttributeError):
        return False


def save_checkpoint(folder: str | os.PathLike, state_dict: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """Write `model.safetensors` then `config.json` (the config last: its presence marks a complete save)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT}))
    text = json.dumps({**config, "format": FORMAT}, indent=1, sort_keys=True) + "\n"
    atomic_write(folder / CONFIG_NAME, lambda tmp: tmp.write_text(text))
    return folder


def load_checkpoint(folder: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a folder written by `save_checkpoint`: (state_dict on CPU, config)."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: a checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{config_path} is not valid JSON ({exc}); re-save the checkpoint") from exc
    if config.get("format") != FORMAT:
        raise CheckpointError(
            f"{config_path} has format {config.get('format')!r}, expected {FORMAT!r}; "
            f"published folders (e.g. PMRF's Hugging Face repo) are read by their own loaders"
        )
    return load_file(str(weights_path)), config
