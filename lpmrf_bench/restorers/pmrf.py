"""PMRF (posterior-mean rectified flow) and its posterior mean, as restorers.

PMRF: z0 = clip(x̂(y), 0, 1) + noise_std * eps, then K Euler steps of the flow from the source end to the
data end, then clip. The posterior mean x̂(y) does not depend on the knobs, so it is computed once per batch and
kept in `RestoreBatch.cache` for every K of a sweep; eps comes from `batch.noise(..., "flow-source")`, so it is
the same draw for every K and every batch composition. The networks load only inside `load` (lazy).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lpmrf_bench.embedded_weights import local_weights
from lpmrf_bench.models.pmrf_loading import PMRFNetworks, load_pmrf, load_posterior_mean
from lpmrf_bench.models.sampler import Velocity, sample_euler, time_grid
from lpmrf_bench.restorers.base import RestoreBatch, TrainingNoise, autocast, check_size
from lpmrf_bench.restorers.builtin import PMRF, POSTERIOR_MEAN, PRECISION, PUBLISHED_SIZE  # noqa: F401 (re-exported)


def cached_posterior_mean(mmse: nn.Module, batch: RestoreBatch, precision: str) -> torch.Tensor:
    """clip(x̂(y), 0, 1) in float32, computed once per batch and precision."""
    key = f"posterior-mean/{precision}"
    if key not in batch.cache:
        with torch.no_grad(), autocast(batch.lq.device, precision):
            batch.cache[key] = mmse(batch.lq).float().clamp(0, 1)
    return batch.cache[key]


def published_euler(velocity: Velocity, x: torch.Tensor, steps: int, eps: float = 0.0) -> torch.Tensor:
    """PMRF's own Euler loop (`MMSERectifiedFlow.generate_reconstructions`), in its arithmetic.

    t_i = (i / K)(1 - eps) + eps is formed in double and enters as `ones(B) * t_i` (float32); every step
    multiplies the velocity by the same Python-float dt = (1 / K)(1 - eps). The generic `sample_euler` uses
    float32 grid differences instead, which differ from that dt in the last bit for most K (e.g. 21 of 25
    steps at K = 25), so its outputs differ from the published ones by ~1e-7.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    dt = (1.0 / steps) * (1.0 - eps)
    t_one = torch.ones(x.shape[0], device=x.device)
    for i in range(steps):
        v = velocity(x, t_one * ((i / steps) * (1.0 - eps) + eps)).to(x.dtype)
        x = x + v * dt
    return x


@dataclass
class PMRFRestorer:
    nets: PMRFNetworks
    training_noise: TrainingNoise = field(init=False)

    def __post_init__(self) -> None:
        self.training_noise = TrainingNoise(self.nets.settings.noise_std)

    @property
    def input_size(self) -> int | None:
        """The square side these weights need (512 for the published ones)."""
        return self.nets.settings.input_size

    def __call__(self, batch: RestoreBatch, knobs: dict[str, Any]) -> torch.Tensor:
        s = self.nets.settings
        check_size(batch.lq, s.input_size, "pmrf", batch.image_ids)
        self.training_noise.check("pmrf", knobs["noise_std"])
        xhat = cached_posterior_mean(self.nets.mmse_model, batch, knobs["precision"])
        source = xhat + knobs["noise_std"] * batch.noise(xhat.shape[1:], "flow-source")
        with torch.no_grad(), autocast(xhat.device, knobs["precision"]):
            if s.time_convention == "t":
                x = published_euler(self.nets.velocity, source, knobs["steps"], s.eps)
            else:
                x = sample_euler(self.nets.velocity, source, time_grid(knobs["steps"], s.time_convention, xhat.device))
        return x.float().clamp(0, 1)


@dataclass
class PosteriorMeanRestorer:
    model: nn.Module
    input_size: int | None

    def __call__(self, batch: RestoreBatch, knobs: dict[str, Any]) -> torch.Tensor:
        check_size(batch.lq, self.input_size, "posterior-mean", batch.image_ids)
        return cached_posterior_mean(self.model, batch, knobs["precision"])


def load_pmrf_restorer(weights: str | None, device: torch.device) -> PMRFRestorer:
    return PMRFRestorer(load_pmrf(local_weights("pmrf", weights)).to(device))


def load_posterior_mean_restorer(weights: str | None, device: torch.device) -> PosteriorMeanRestorer:
    model, input_size = load_posterior_mean(local_weights("posterior-mean", weights))
    return PosteriorMeanRestorer(model.to(device), input_size)
