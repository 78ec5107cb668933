"""The latent flow network: configuration, shapes, attention maths against explicit loops, every weight used."""
from __future__ import annotations

import math

import pytest
import torch

from _latent_tiny import randomize_flow as randomize
from lpmrf_bench.models.latent_flow import Attention, LatentFlow, LatentFlowConfig


def test_config_round_trip_and_validation():
    cfg = LatentFlowConfig.tiny(in_channels=16)
    assert LatentFlowConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="one entry per level"):
        LatentFlowConfig(widths=(16, 32), depths=(1,), attention=("global", "global"), head_dims=(8, 8), kernel_sizes=(0, 0))
    with pytest.raises(ValueError, match="odd kernel"):
        LatentFlowConfig(widths=(16,), depths=(1,), attention=("neighborhood",), head_dims=(8,), kernel_sizes=(4,))
    with pytest.raises(ValueError, match="unknown latent flow"):
        LatentFlowConfig.from_dict({**cfg.to_dict(), "patch_size": 2})


def test_default_config_is_a_three_level_512px_network():
    cfg = LatentFlowConfig()
    assert cfg.in_channels == 32 and cfg.attention == ("neighborhood", "neighborhood", "global")
    # a 512 px image is a 64 x 64 latent: levels at 64, 32 and 16 tokens a side, all >= the 7x7 neighborhood
    assert all(64 // 2**i >= k for i, k in enumerate(cfg.kernel_sizes))


@pytest.mark.parametrize("size", [(4, 4), (6, 8), (8, 4)])
def test_output_has_the_latent_shape(size):
    net = randomize(LatentFlow(LatentFlowConfig.tiny()))
    x = torch.randn(2, 4, *size, generator=torch.Generator().manual_seed(1))
    assert net(x, torch.tensor([0.2, 0.7])).shape == x.shape


def test_odd_latent_is_refused():
    with pytest.raises(ValueError, match="multiples of 2"):
        LatentFlow(LatentFlowConfig.tiny())(torch.zeros(1, 4, 5, 4), torch.zeros(1))


@pytest.mark.slow
def test_samples_do_not_interact_and_time_matters():
    net = randomize(LatentFlow(LatentFlowConfig.tiny()))
    x = torch.randn(3, 4, 4, 4, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0.1, 0.5, 0.9])
    with torch.no_grad():
        together = net(x, t)
        alone = torch.cat([net(x[i : i + 1], t[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(net(x, t), net(x, t.flip(0)))


@pytest.mark.slow
def test_every_weight_changes_the_output():
    net = randomize(LatentFlow(LatentFlowConfig.tiny()))
    x = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([0.25, 0.75])
    with torch.no_grad():
        base = net(x, t)
        for name, tensor in net.state_dict().items():
            saved = tensor.clone()
            tensor.add_(0.1)
            assert not torch.equal(net(x, t), base), f"perturbing {name} changed nothing"
            tensor.copy_(saved)


def explicit_attention(module: Attention, x: torch.Tensor) -> torch.Tensor:
    """Per-query loop: RoPE written out per pair, softmax over the clamped window (or the whole map)."""
    b, c, h, w = x.shape
    heads, d, k = module.heads, module.head_dim, module.kernel_size
    qkv = module.qkv(x)
    out = torch.zeros(b, c, h, w, dtype=torch.float64)
    n = d // 8  # frequencies per axis

    def rotated(vec, head, i, j):
        """vec [d] at token (i, j): pairs (p, p + 2n) rotated by row angles then column angles."""
        # cell centres in a box of half-side 1 along the longer axis (k-diffusion's axial positions)
        rows = ((i + 0.5) / h * 2 - 1) * min(1.0, h / w)
        cols = ((j + 0.5) / w * 2 - 1) * min(1.0, w / h)
        freqs = [math.exp(math.log(math.pi) + (math.log(10 * math.pi) - math.log(math.pi)) * (f * heads + head) / (heads * n)) for f in range(n)]
        angles = [rows * f for f in freqs] + [cols * f for f in freqs]
        out = vec.clone()
        for p, a in enumerate(angles):
            x1, x2 = vec[p], vec[p + 2 * n]
            out[p], out[p + 2 * n] = x1 * math.cos(a) - x2 * math.sin(a), x2 * math.cos(a) + x1 * math.sin(a)
        return out

    for bi in range(b):
        for head in range(heads):
            q = qkv[bi, head * d : (head + 1) * d].double()
            kk = qkv[bi, c + head * d : c + (head + 1) * d].double()
            v = qkv[bi, 2 * c + head * d : 2 * c + (head + 1) * d].double()
            for i in range(h):
                for j in range(w):
                    if module.kind == "neighborhood":
                        i0, j0 = min(max(i - k // 2, 0), h - k), min(max(j - k // 2, 0), w - k)
                        keys = [(a, bb) for a in range(i0, i0 + k) for bb in range(j0, j0 + k)]
                    else:
                        keys = [(a, bb) for a in range(h) for bb in range(w)]
                    qv = rotated(q[:, i, j], head, i, j)
                    scores = torch.stack([qv @ rotated(kk[:, a, bb], head, a, bb) for a, bb in keys]) / math.sqrt(d)
                    weights = scores.softmax(0)
                    out[bi, head * d : (head + 1) * d, i, j] = sum(wt * v[:, a, bb] for wt, (a, bb) in zip(weights, keys))
    return torch.nn.functional.conv2d(out.float(), module.out.weight, module.out.bias)


@pytest.mark.parametrize("kind,kernel", [("neighborhood", 3), ("global", 0)])
def test_attention_matches_an_explicit_loop(kind, kernel):
    module = randomize(Attention(16, 8, kind, kernel), seed=5)
    x = torch.randn(1, 16, 4, 5, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(module(x), explicit_attention(module, x), rtol=1e-4, atol=1e-4)
