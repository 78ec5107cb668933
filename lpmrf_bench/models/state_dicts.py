"""Published PyTorch files loaded as they are: safe unpickling and strict key matching that explains itself."""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    """`load_state_dict(strict=True)` whose error names the file and the offending keys and shapes.

    BatchNorm's `num_batches_tracked` may be absent (files saved before torch 0.4.1); it is unused in eval.
    """
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{path} does not match the published {type(model).__name__} layout:"]
        if missing:
            parts.append(f"  missing {len(missing)} keys, e.g. {missing[:10]}")
        if unexpected:
            parts.append(f"  unexpected {len(unexpected)} keys, e.g. {unexpected[:10]}")
        for k in wrong[:10]:
            parts.append(f"  {k}: file has {tuple(state[k].shape)}, model needs {tuple(own[k].shape)}")
        parts.append("  Is it the right file? Re-download it from the source listed by `lpmrf-bench weights list`.")
        raise ValueError("\n".join(parts))
    model.load_state_dict(state, strict=True)


def read_torch_file(path: str | os.PathLike) -> object:
    """torch.load on the CPU: tensors and plain containers only, unless the file needs more.

    Lightning checkpoints pickle their hyper-parameters as Python objects; for those the full unpickler is
    used with a warning (it can run code: only load files from a source you trust).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            log.warning("%s holds non-tensor Python objects; loading it with the full unpickler (trust the file)", path)
            return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt file, HTML page saved by a failed download, foreign pickle
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); "
                         f"download it again") from exc
