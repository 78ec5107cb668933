"""Euler sampler, both time conventions, against closed forms."""
import pytest
import torch

from lpmrf_bench.models.sampler import (
    flow_matching_loss,
    interpolate,
    sample_euler,
    stratified_uniform,
    time_grid,
)


def test_grids():
    assert torch.equal(time_grid(4, "t"), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert torch.equal(time_grid(4, "sigma"), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    assert time_grid(25, "t")[7].item() == torch.tensor(7 / 25, dtype=torch.float32).item()
    with pytest.raises(ValueError, match="time convention"):
        time_grid(3, "tau")
    with pytest.raises(ValueError, match="steps"):
        time_grid(0, "t")


@pytest.mark.parametrize("steps", [1, 5, 25])
@pytest.mark.parametrize("lam", [-0.7, 0.3, 2.0])
def test_linear_velocity_closed_form(steps, lam):
    # v = lam * x. "t": each step multiplies by (1 + lam/K), so x_K = (1 + lam/K)^K x_0.
    # "sigma": the grid steps by -1/K, so x_K = (1 - lam/K)^K x_0.
    x0 = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    velocity = lambda x, t: lam * x
    for convention, factor in (("t", 1 + lam / steps), ("sigma", 1 - lam / steps)):
        got = sample_euler(velocity, x0, time_grid(steps, convention).double())
        torch.testing.assert_close(got, factor**steps * x0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("steps", [1, 5, 25])
def test_same_flow_in_both_conventions(steps):
    # a time-dependent flow v_t(x, t) written in sigma = 1 - t is v_sigma(x, s) = -v_t(x, 1 - s)
    x0 = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(1))
    v_t = lambda x, t: torch.sin(3 * t).view(-1, 1, 1, 1) * x + t.view(-1, 1, 1, 1) ** 2
    v_sigma = lambda x, s: -v_t(x, 1 - s)
    a = sample_euler(v_t, x0, time_grid(steps, "t"))
    b = sample_euler(v_sigma, x0, time_grid(steps, "sigma"))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_velocity_sees_per_sample_time_and_callback_runs():
    seen, steps = [], []
    def velocity(x, t):
        seen.append(t.clone())
        return torch.zeros_like(x)
    sample_euler(velocity, torch.zeros(3, 1), time_grid(4, "t"), callback=lambda d: steps.append(d["i"]))
    assert steps == [0, 1, 2, 3]
    assert all(t.shape == (3,) for t in seen)
    assert [t[0].item() for t in seen] == [0.0, 0.25, 0.5, 0.75]


def test_interpolants_match_facts():
    data, source = torch.full((2, 1), 3.0), torch.full((2, 1), -1.0)
    times = torch.tensor([0.25, 1.0])
    x, target = interpolate(data, source, times, "t")
    torch.testing.assert_close(x, torch.tensor([[0.25 * 3 - 0.75], [3.0]]))
    torch.testing.assert_close(target, torch.full((2, 1), 4.0))
    x, target = interpolate(data, source, times, "sigma")
    torch.testing.assert_close(x, torch.tensor([[-0.25 + 0.75 * 3], [-1.0]]))
    torch.testing.assert_close(target, torch.full((2, 1), -4.0))


def test_loss_is_zero_for_the_exact_straight_path_velocity():
    gen = torch.Generator().manual_seed(2)
    data, source = torch.randn(4, 3, 2, 2, generator=gen), torch.randn(4, 3, 2, 2, generator=gen)
    times = stratified_uniform(4, gen)
    oracle_t = lambda x, t: data - source
    assert flow_matching_loss(oracle_t, data, source, times, "t").item() == 0.0
    oracle_sigma = lambda x, s: source - data
    assert flow_matching_loss(oracle_sigma, data, source, times, "sigma").item() == 0.0
    wrong = lambda x, t: torch.zeros_like(x)
    torch.testing.assert_close(flow_matching_loss(wrong, data, source, times, "t"), ((data - source) ** 2).mean())


def test_stratified_uniform_strata_and_seed():
    t = stratified_uniform(8, torch.Generator().manual_seed(3))
    assert ((t * 8).floor() == torch.arange(8)).all()
    assert torch.equal(t, stratified_uniform(8, torch.Generator().manual_seed(3)))
    ranks = torch.cat([stratified_uniform(4, torch.Generator().manual_seed(g), g, 3) for g in range(3)])
    assert sorted((ranks * 12).floor().long().tolist()) == list(range(12))
    with pytest.raises(ValueError):
        stratified_uniform(4, torch.Generator(), group=3, groups=3)


def test_flow_match_grid_is_diffusers_default_schedule():
    from lpmrf_bench.models.sampler import flow_match_grid, schedule_grid

    k = 25
    expected = [1.0 - i * (1.0 - 1 / 1000) / (k - 1) for i in range(k)] + [0.0]
    got = flow_match_grid(k, "sigma")
    assert got.shape == (k + 1,)
    assert torch.allclose(got.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-7)
    assert torch.equal(flow_match_grid(k, "t"), (1.0 - torch.tensor(expected, dtype=torch.float64)).float())
    assert torch.equal(schedule_grid("uniform", 4, "t"), time_grid(4, "t"))
    with pytest.raises(ValueError, match="schedule must be one of"):
        schedule_grid("karras", 4, "t")
