"""GFPGAN as a restorer: the published inference for aligned 512 faces (`GFPGANer.enhance(has_aligned=True)`).

[0,1] RGB -> [-1,1] -> network -> clamp to [-1,1] -> [0,1]. The published forward draws fresh decoder noise on
every call (`randomize_noise=True`); here that noise comes from `RestoreBatch.noise`, one stream per injection
point, so an output is a function of (seed, image, sample) and `--samples N` measures the spread. `enhance`'s
`weight` argument reaches the clean network only as an ignored keyword, so GFPGAN has no knob but `precision`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lpmrf_bench.models.pmrf_loading import swinir_state_from_pth
from lpmrf_bench.models.state_dicts import load_state_dict_strict, read_torch_file
from lpmrf_bench.restorers.base import RestoreBatch, check_size, restore_signed
from lpmrf_bench.weights import WeightsMissingError, resolve
from lpmrf_baselines.gfpgan.network import GFPGAN_CONFIGS, GFPGANConfig, GFPGANv1Clean
from lpmrf_baselines.gfpgan.weights import DEFAULT_WEIGHTS, WEIGHT_SETS



def load_gfpgan_file(path: str | Path, config: GFPGANConfig = GFPGAN_CONFIGS["gfpgan_v1_clean"]) -> GFPGANv1Clean:
    """A GFPGAN release file as it is, loaded strictly: `params_ema`, else `params` (as `GFPGANer` picks; the
    shared BasicSR-convention reader also takes a bare state dict)."""
    state = swinir_state_from_pth(read_torch_file(path), str(path))
    net = GFPGANv1Clean(config)
    load_state_dict_strict(net, state, path)
    return net.eval().requires_grad_(False)


def gfpgan_weights_path(weights: str | None) -> Path:
    """A weight-set name (`v1.4`, `v1.3`; None = v1.4) resolved through the cache, or a path to a `.pth`."""
    name = weights or DEFAULT_WEIGHTS
    if name in WEIGHT_SETS:
        return resolve(WEIGHT_SETS[name])
    path = Path(name).expanduser()
    if not path.is_file():
        raise WeightsMissingError(f"gfpgan weights {name!r}: neither a weight set ({', '.join(WEIGHT_SETS)}) "
                                  f"nor an existing file")
    return path


@dataclass
class GFPGANRestorer:
    net: GFPGANv1Clean

    @property
    def input_size(self) -> int:
        return self.net.config.out_size

    def __call__(self, batch: RestoreBatch, knobs: dict[str, Any]) -> torch.Tensor:
        check_size(batch.lq, self.input_size, "gfpgan", batch.image_ids)
        noise = [batch.noise(shape, f"gfpgan-decoder-noise{i}") for i, shape in enumerate(self.net.noise_shapes())]
        return restore_signed(lambda x: self.net(x, noise), batch.lq, knobs["precision"])


def load_gfpgan_restorer(weights: str | None, device: torch.device) -> GFPGANRestorer:
    return GFPGANRestorer(load_gfpgan_file(gfpgan_weights_path(weights)).to(device))


def random_gfpgan_restorer(device: torch.device, seed: int) -> GFPGANRestorer:
    """The released architecture on seeded random values: for speed measurements without the files."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = GFPGANv1Clean()
    return GFPGANRestorer(net.eval().requires_grad_(False).to(device))
