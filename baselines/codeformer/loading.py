"""CodeFormer's weights, loaded as published, and the restorer that runs them.

- `official`: the release's `codeformer.pth`, whose `params_ema` is the network inference uses; resolved through
  the weights cache (release URL; no hash is published, so the one seen at first download is recorded).
- a `.pth`/`.pt` in the same basicsr form (`params_ema` > `params` > a bare state dict), full-size network.
- our checkpoint folder (`lpmrf_bench.models.checkpoint`) whose config names the sizes, e.g. the tiny tests' one.
Missing, unexpected or mis-shaped keys are one error that lists them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lpmrf_baselines.codeformer.arch import CodeFormer, CodeFormerConfig
from lpmrf_bench.models.checkpoint import CheckpointError, is_checkpoint, load_checkpoint, save_checkpoint
from lpmrf_bench.models.state_dicts import load_state_dict_strict, read_torch_file
from lpmrf_bench.restorers.base import RestoreBatch, check_size, restore_signed
from lpmrf_bench.weights import resolve
from lpmrf_baselines.codeformer.weights import CODEFORMER_PTH

KIND = "codeformer"


def config_from_json(fields: dict[str, Any], source: str) -> CodeFormerConfig:
    known = {f.name for f in dataclasses.fields(CodeFormerConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise CheckpointError(f"{source}: unknown CodeFormer config fields {unknown} (known: {sorted(known)})")
    return CodeFormerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def save_codeformer(folder: str | Path, net: CodeFormer) -> Path:
    """Write `net` in our checkpoint format: published keys, sizes in config.json."""
    return save_checkpoint(folder, net.state_dict(), {"kind": KIND, "arch": dataclasses.asdict(net.config)})


def load_codeformer(weights: str | None) -> CodeFormer:
    """The network for `weights` (None/"official", a basicsr `.pth`, or our checkpoint folder), CPU, eval mode."""
    from lpmrf_bench.models.pmrf_loading import swinir_state_from_pth  # basicsr's key conventions

    path = resolve(CODEFORMER_PTH) if weights in (None, "official") else Path(weights).expanduser()
    if not path.exists():
        raise CheckpointError(f"CodeFormer weights {str(path)!r} do not exist")
    if path.is_dir() and is_checkpoint(path):
        state, config = load_checkpoint(path)
        if config.get("kind") != KIND:
            raise CheckpointError(f"{path} holds a {config.get('kind')!r} checkpoint, not a CodeFormer one")
        net = CodeFormer(config_from_json(config.get("arch", {}), str(path)))
    elif path.is_file() and path.suffix in (".pth", ".pt"):
        state, net = swinir_state_from_pth(read_torch_file(path), str(path)), CodeFormer()
    else:
        raise CheckpointError(f"CodeFormer weights {str(path)!r} not recognised: give 'official', a .pth with "
                              f"'params_ema' (as released), or a checkpoint folder written by lpmrf-bench")
    load_state_dict_strict(net, state, str(path))
    return net.eval()


@dataclass
class CodeFormerRestorer:
    """Published aligned-face inference: [-1, 1] in, `net(x, w=fidelity, adain=True)[0]`, clamp, [0, 1] out."""

    net: CodeFormer

    @property
    def input_size(self) -> int:
        return self.net.config.img_size

    def __call__(self, batch: RestoreBatch, knobs: dict[str, Any]) -> torch.Tensor:
        check_size(batch.lq, self.input_size, KIND, batch.image_ids)
        return restore_signed(lambda x: self.net(x, w=knobs["fidelity"], adain=True)[0], batch.lq, knobs["precision"])


def load_restorer(weights: str | None, device: torch.device) -> CodeFormerRestorer:
    return CodeFormerRestorer(load_codeformer(weights).to(device))


def random_restorer(device: torch.device, seed: int) -> CodeFormerRestorer:
    """The released architecture with PyTorch's default initialisation under `seed` (for speed measurements)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = CodeFormer()
    return CodeFormerRestorer(net.eval().to(device))
