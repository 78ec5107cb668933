"""Both neighborhood-attention paths (tiled on the CPU, flex elsewhere) against an explicit per-query loop over
the NATTEN window."""
import pytest
import torch

from lpmrf_bench.models.neighborhood import (
    flex_neighborhood_attention,
    neighborhood_attention,
    tiled_neighborhood_attention,
)

PATHS = {"tiled": tiled_neighborhood_attention, "flex": flex_neighborhood_attention}


def loop_reference(q, k, v, kernel_size, scale):
    """For every query: the clamped window written out by hand, then a plain softmax."""
    b, heads, height, width, _ = q.shape
    r = kernel_size // 2
    out = torch.empty(b, heads, height, width, v.shape[-1], dtype=torch.float64)
    q, k, v = q.double(), k.double(), v.double()
    for i in range(height):
        i0 = min(max(i - r, 0), height - kernel_size)
        for j in range(width):
            j0 = min(max(j - r, 0), width - kernel_size)
            keys = k[:, :, i0:i0 + kernel_size, j0:j0 + kernel_size].reshape(b, heads, -1, k.shape[-1])
            vals = v[:, :, i0:i0 + kernel_size, j0:j0 + kernel_size].reshape(b, heads, -1, v.shape[-1])
            logits = torch.einsum("bhd,bhnd->bhn", q[:, :, i, j], keys) * scale
            out[:, :, i, j] = torch.einsum("bhn,bhnd->bhd", logits.softmax(-1), vals)
    return out


# sides below, at and above the CPU query tile (4), multiples of it and not (the last tile then overlaps)
SHAPES = [(3, 3, 3), (7, 7, 7), (9, 11, 3), (12, 10, 5), (13, 17, 7), (20, 9, 5), (16, 16, 7), (23, 29, 7)]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("height,width,kernel_size", SHAPES)
@pytest.mark.slow
def test_matches_explicit_window_loop(path, height, width, kernel_size):
    gen = torch.Generator().manual_seed(height * 100 + width * 10 + kernel_size)
    q, k = (torch.randn(2, 3, height, width, 8, generator=gen) for _ in range(2))
    v = torch.randn(2, 3, height, width, 6, generator=gen)
    scale = 0.7
    got = PATHS[path](q, k, v, kernel_size, scale=scale)
    want = loop_reference(q, k, v, kernel_size, scale)
    assert got.shape == (2, 3, height, width, 6)
    assert (got.double() - want).abs().max().item() < 1e-5


def test_default_scale_is_inverse_sqrt_d():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 8, 8, 16, generator=gen) for _ in range(3))
    got = neighborhood_attention(q, k, v, 3)
    want = loop_reference(q, k, v, 3, 16 ** -0.5)
    assert (got.double() - want).abs().max().item() < 1e-5


def test_kernel_as_large_as_map_is_global_attention():
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 5, 5, 4, generator=gen) for _ in range(3))
    got = neighborhood_attention(q, k, v, 5, scale=1.0)
    flat = [t.reshape(1, 2, 25, 4) for t in (q, k, v)]
    want = torch.nn.functional.scaled_dot_product_attention(*flat, scale=1.0).reshape(1, 2, 5, 5, 4)
    assert (got - want).abs().max().item() < 1e-5


def test_bad_inputs_are_named():
    x = torch.zeros(1, 1, 4, 4, 8)
    with pytest.raises(ValueError, match="at least that large"):
        neighborhood_attention(x, x, x, 5)
    with pytest.raises(ValueError, match="odd"):
        neighborhood_attention(x, x, x, 2)
    with pytest.raises(ValueError, match=r"\[B, heads, H, W, d\]"):
        neighborhood_attention(x[0], x[0], x[0], 3)


def test_cpu_gradient_path_matches_loop_values_and_gradients():
    gen = torch.Generator().manual_seed(5)
    leaves = [torch.randn(1, 2, 9, 10, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    got = neighborhood_attention(*leaves, 5, scale=0.5)
    want = loop_reference(*leaves, 5, 0.5)
    assert (got - want).abs().max().item() < 1e-10
    weights = torch.randn(got.shape, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((got * weights).sum(), leaves)
    grads_ref = torch.autograd.grad((want * weights).sum(), leaves)
    for g, r in zip(grads, grads_ref):
        assert (g - r).abs().max().item() < 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_each_path_matches_the_loop_on_a_small_map(path):
    """The fast subset's check of both paths (the slow test above covers more shapes)."""
    gen = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(1, 2, 10, 7, 8, generator=gen) for _ in range(3))
    got = PATHS[path](q, k, v, 5, scale=0.7)
    assert (got.double() - loop_reference(q, k, v, 5, 0.7)).abs().max().item() < 1e-5


def test_cpu_tensors_take_the_tiled_path(monkeypatch):
    from lpmrf_bench.models import neighborhood

    def refuse(*args, **kwargs):
        raise AssertionError("flex_attention called for CPU tensors")

    monkeypatch.setattr(neighborhood, "flex_neighborhood_attention", refuse)
    x = torch.randn(1, 1, 8, 8, 8)
    neighborhood_attention(x, x, x, 3)


def test_a_plan_first_built_in_inference_mode_serves_a_differentiated_pass():
    """Training validates under inference_mode, then takes gradients through the same cached plan."""
    from lpmrf_bench.models.neighborhood import tile_plan

    tile_plan.cache_clear()
    gen = torch.Generator().manual_seed(9)
    with torch.inference_mode():
        x = torch.randn(1, 2, 11, 9, 4, generator=gen, dtype=torch.float64)
        tiled_neighborhood_attention(x, x, x, 3)
    leaves = [torch.randn(1, 2, 11, 9, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    weights = torch.randn(1, 2, 11, 9, 4, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((tiled_neighborhood_attention(*leaves, 3, scale=0.5) * weights).sum(), leaves)
    grads_ref = torch.autograd.grad((loop_reference(*leaves, 3, 0.5) * weights).sum(), leaves)
    for g, r in zip(grads, grads_ref):
        assert (g - r).abs().max().item() < 1e-10
