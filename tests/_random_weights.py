"""Seeded random weights in a published key layout (key -> shape from a manifest), for the feature networks whose
files cannot be downloaded here: nothing zero, and scaled so activations neither vanish nor explode."""
from __future__ import annotations

import torch


def random_published_state(keys: dict[str, list[int]], seed: int, gain: float = 1.6) -> dict[str, torch.Tensor]:
    """Convolutions and linears ~ gain / sqrt(fan-in); batch-norm scales and variances near 1; small biases and
    running means. 1-D `.weight` tensors are batch-norm scales (a linear's weight is 2-D)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in keys.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(3)
        elif len(shape) > 1:
            fan_in = torch.tensor(shape[1:]).prod().item()
            state[key] = torch.randn(shape, generator=g) * gain / fan_in ** 0.5
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) * 0.2 + 0.9
        elif key.endswith(".weight"):
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[key] = 0.05 * torch.randn(shape, generator=g)
    return state
