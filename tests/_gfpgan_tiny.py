"""Shared by the GFPGAN tests: the tiny network with the reference script's seeded weights, one thread."""
import sys
from pathlib import Path

import pytest
import torch

from lpmrf_baselines.gfpgan.network import GFPGAN_CONFIGS, GFPGANv1Clean

REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
from gfpgan_clean import TINY, random_state, reference_inputs  # noqa: E402

TINY_CONFIG = GFPGAN_CONFIGS["gfpgan_tiny"]
__all__ = ["REFERENCE", "TINY", "TINY_CONFIG", "one_thread", "random_state", "reference_inputs", "tiny_net"]


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny networks are latency-bound: one thread is ~40x faster than two on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_net(dtype=torch.float64) -> GFPGANv1Clean:
    net = GFPGANv1Clean(TINY_CONFIG).to(dtype)
    state = random_state({k: tuple(v.shape) for k, v in net.state_dict().items()})
    net.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
    return net.eval()
