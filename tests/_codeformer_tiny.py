"""Shared by the CodeFormer tests and `tests/reference/codeformer_official.py`: seeded random non-zero weights
keyed by parameter name (so the official network and ours get the same values whatever their module code), and
the inputs the reference outputs were computed on."""
import math
import zlib

import torch

REFERENCE_SEED = 16
REFERENCE_CASES = ((0.0, True), (0.5, True), (1.0, False))  # (w, adain)


def random_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Matrices and kernels ~ N(0, 1/fan_in); norm scales ~ 1 + N(0, 0.1^2); biases ~ N(0, 0.05^2).

    Every value is non-zero almost surely; each tensor's draw depends only on (seed, its name, its shape).
    """
    state = {}
    for name, shape in shapes.items():
        gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
        noise = torch.randn(tuple(shape), generator=gen, dtype=torch.float32)
        if len(shape) >= 2:
            state[name] = noise / math.sqrt(math.prod(shape[1:]))
        elif name.endswith("weight"):
            state[name] = 1 + 0.1 * noise
        else:
            state[name] = 0.05 * noise
    return state


def reference_input() -> torch.Tensor:
    """Two 32x32 images in [-1, 1] (the network's input range)."""
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(REFERENCE_SEED)) * 2 - 1
