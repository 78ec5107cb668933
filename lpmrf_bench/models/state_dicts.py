"""Published PyTorch files loaded as they are: safe unpickling and strict key matching that explains itself."""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

from collections.abc import Callable

import torch
from torch import nn

from lpmrf_bench.weights import TRUST_ENV, UnreadableWeightsError, UnsafePickleError, WeightsError, pinned, sha256_of

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
        raise UnreadableWeightsError("\n".join(parts))
    model.load_state_dict(state, strict=True)


def _refusal(exc: pickle.UnpicklingError) -> tuple[bool, str]:
    """(whether torch refused a Python object (a GLOBAL) rather than unreadable bytes, its one-line reason)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    refused = next((line for line in lines if "GLOBAL" in line), None)
    if refused is not None:
        return True, refused
    detail = str(exc).split("WeightsUnpickler error:", 1)[-1]
    return False, next((line.strip() for line in detail.splitlines() if line.strip()), lines[0] if lines else "")


def trusted_files() -> set[Path]:
    """Files the user allowed the full unpickler for (`--trust-pickle FILE`, or `LPMRF_BENCH_TRUST_PICKLE`)."""
    listed = os.environ.get(TRUST_ENV, "")
    return {Path(p).expanduser().resolve() for p in listed.split(os.pathsep) if p}


def read_torch_file(path: str | os.PathLike) -> object:
    """torch.load on the CPU with `weights_only=True`: tensors and plain containers, never arbitrary code.

    Lightning checkpoints can pickle hyper-parameters as Python objects, which only the full unpickler reads,
    and unpickling can run any code. It is used only for a file whose sha256 the weight catalog pins (the
    file its source published) or that the user named as trusted; anything else is refused with a message.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableWeightsError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        holds_objects, detail = _refusal(exc)
        if not holds_objects:  # the bytes are not a checkpoint at all (a saved web page, a truncated file)
            raise UnreadableWeightsError(f"{path} is not a readable PyTorch checkpoint ({detail}); "
                                         "download it again") from exc
    except Exception as exc:  # truncated file, HTML page saved by a failed download, foreign format
        raise UnreadableWeightsError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); "
                                     "download it again") from exc
    digest = sha256_of(path)
    pin = pinned(digest)
    if pin is None and path.resolve() not in trusted_files():
        raise UnsafePickleError(
            f"{path} holds pickled Python objects that only the full unpickler reads, and unpickling can run "
            f"arbitrary code, so it was not loaded ({detail}). If you trust this file, pass --trust-pickle {path} "
            f"(or list it in {TRUST_ENV}).")
    log.warning("%s: loading with the full unpickler (%s)", path,
                f"sha256 pinned for {pin.path}" if pin else "trusted by the user")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise UnreadableWeightsError(f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc


def load_torchvision_style(path: str, build: Callable[[], nn.Module], file_name: str, layout: str) -> nn.Module:
    """A plain state-dict file (torchvision's and the FID converters' form) read `weights_only` and loaded into
    `build()` as it is; the random initialisation does not consume the caller's RNG stream. Errors name the file
    and say what it should have been (`file_name`, `layout`)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files fail in many ways; all mean "replace the file"
        raise WeightsError(f"{path}: cannot read it as {file_name} ({type(exc).__name__}: {exc})") from exc
    with torch.random.fork_rng(devices=[]):
        model = build()
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise WeightsError(f"{path}: not {layout} layout ({str(exc).splitlines()[0]})") from exc
    return model
