"""One Euler sampler for flow matching, in either time convention; the matching training loss.

Two conventions describe the same ODE (FACTS.md):
- "t" (PMRF): t runs 0 (source) -> 1 (data); x_t = t*data + (1-t)*source; velocity target data - source.
- "sigma" (Latent-PMRF): sigma runs 1 (source) -> 0 (data); x = sigma*source + (1-sigma)*data;
  velocity target source - data.
A sampler is a time grid plus `x <- x + (grid[i+1] - grid[i]) * v(x, grid[i])`: the grid carries the sign, so
one loop serves both.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
CONVENTIONS = ("t", "sigma")
SCHEDULES = ("uniform", "flow-match")  # PMRF's i/K grid; diffusers' FlowMatchEulerDiscreteScheduler grid


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"time convention must be one of {CONVENTIONS}, got {convention!r}")


def time_grid(steps: int, convention: str, device: torch.device | str | None = None) -> torch.Tensor:
    """`steps + 1` uniform times from the source to the data end: 0 -> 1 for "t", 1 -> 0 for "sigma".

    Points are i / steps computed in float64 then rounded, so t_i equals the published `i / K` exactly.
    """
    _check_convention(convention)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    grid = torch.arange(steps + 1, dtype=torch.float64) / steps
    if convention == "sigma":
        grid = 1.0 - grid
    return grid.to(device=device, dtype=torch.float32)


def flow_match_grid(steps: int, convention: str, train_steps: int = 1000,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The grid of diffusers' `FlowMatchEulerDiscreteScheduler` (shift 1) after `set_timesteps(steps)`.

    sigma = linspace(1, 1/train_steps, steps), then the terminal 0: `steps` velocity calls, the first
    steps-1 of length (1 - 1/train_steps)/(steps-1) and a last one of 1/train_steps. Latent-PMRF samples with
    this scheduler; expressed in the "t" convention the grid is 1 - sigma.
    """
    _check_convention(convention)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    sigmas = torch.cat([torch.linspace(1.0, 1.0 / train_steps, steps, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    grid = sigmas if convention == "sigma" else 1.0 - sigmas
    return grid.to(device=device, dtype=torch.float32)


def schedule_grid(schedule: str, steps: int, convention: str, device: torch.device | str | None = None) -> torch.Tensor:
    """The time grid of a named schedule (`SCHEDULES`)."""
    grids = {"uniform": time_grid, "flow-match": flow_match_grid}
    if schedule not in grids:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    return grids[schedule](steps, convention, device=device)


def sample_euler(
    velocity: Velocity,
    x: torch.Tensor,
    grid: torch.Tensor,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> torch.Tensor:
    """Integrate dx/dtime = velocity(x, time) along `grid` with Euler steps; returns the final x.

    `velocity` receives the time as a [B] tensor (one value per sample). `callback`, if given, gets
    {"i", "x", "time", "velocity"} after each step (progress, trajectory capture).
    """
    batch = x.shape[0]
    grid = grid.to(x.device)
    for i in range(len(grid) - 1):
        time = grid[i].expand(batch)
        v = velocity(x, time).to(x.dtype)
        x = x + (grid[i + 1] - grid[i]).to(x.dtype) * v
        if callback is not None:
            callback({"i": i, "x": x, "time": grid[i], "velocity": v})
    return x


def interpolate(
    data: torch.Tensor, source: torch.Tensor, times: torch.Tensor, convention: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The point on the straight path at `times` ([B]) and the velocity that moves along it, per convention."""
    _check_convention(convention)
    s = times.to(data.dtype).view(-1, *([1] * (data.ndim - 1)))
    if convention == "t":
        return s * data + (1 - s) * source, data - source
    return s * source + (1 - s) * data, source - data


def flow_matching_loss(
    velocity: Velocity, data: torch.Tensor, source: torch.Tensor, times: torch.Tensor, convention: str
) -> torch.Tensor:
    """Mean squared error between the predicted velocity at the interpolant and the straight-path velocity."""
    x, target = interpolate(data, source, times, convention)
    return F.mse_loss(velocity(x, times), target)


def stratified_uniform(
    batch: int,
    generator: torch.Generator,
    group: int = 0,
    groups: int = 1,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """[batch] times in [0, 1), one per stratum of width 1 / (batch * groups); `group` is this rank's share.

    Across `groups` ranks the strata interleave, so the global batch covers [0, 1) evenly (as PMRF trains).
    """
    if groups <= 0 or not 0 <= group < groups:
        raise ValueError(f"need 0 <= group < groups, got group={group}, groups={groups}")
    n = batch * groups
    offsets = torch.arange(group, n, groups, dtype=torch.float64)
    u = torch.rand(batch, generator=generator, dtype=torch.float64)
    return ((offsets + u) / n).to(device=device, dtype=torch.float32)


def logit_normal(u: torch.Tensor) -> torch.Tensor:
    """Uniform draws -> times sigmoid(z), z ~ N(0, 1) by the inverse CDF: SD3's logit-normal training times,
    which weight the middle of the path over its ends; stratified draws stay stratified."""
    z = 2**0.5 * torch.erfinv(2 * u.double() - 1)
    return torch.sigmoid(z).to(u.dtype)


# how a flow's training times are drawn from stratified uniform ones (FlowConfig.time_sampling)
TIME_SAMPLINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"uniform": lambda u: u,
                                                                     "logit-normal": logit_normal}


def time_sampling_spec(name: str) -> str:
    """The loss spec's word for it: `stratified` (uniform, as PMRF trains) or `stratified-<name>`."""
    return "stratified" if name == "uniform" else f"stratified-{name}"
