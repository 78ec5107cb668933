"""Training speed read off validation curves: after how many steps one method matches another.

Latent-PMRF's "5.79x faster" is such a reading: its FID at 40k steps is first reached by PMRF at ~231k steps
(interpolated between logged steps). A curve is (step, value) pairs of one metric; training runs log them in
`convergence.parquet` (run_id, step, wall_s, images_seen, metric, spec, value, n).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lpmrf_bench import store


@dataclass(frozen=True)
class Speedup:
    candidate_step: float  # where the candidate's value is read
    target: float  # the candidate's value there
    baseline_step: float | None  # first (interpolated) step at which the baseline reaches it; None if never
    ratio: float | None  # baseline_step / candidate_step


def steps_to_reach(steps: np.ndarray, values: np.ndarray, target: float, lower_is_better: bool = True) -> float | None:
    """The first step at which the curve reaches `target`, linearly interpolated between logged steps.

    Logged points in step order; None when the curve never gets there. A curve that starts at or beyond the
    target reaches it at its first step.
    """
    order = np.argsort(steps)
    steps, values = np.asarray(steps, dtype=float)[order], np.asarray(values, dtype=float)[order]
    gap = (values - target) if lower_is_better else (target - values)  # <= 0 once reached
    reached = np.flatnonzero(gap <= 0)
    if reached.size == 0:
        return None
    i = int(reached[0])
    if i == 0:
        return float(steps[0])
    frac = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(steps[i - 1] + frac * (steps[i] - steps[i - 1]))


def speedup(baseline: pd.DataFrame, candidate: pd.DataFrame, at_step: float | None = None,
            lower_is_better: bool = True) -> Speedup:
    """How many times more steps the baseline needs to reach the candidate's value at `at_step`.

    Both frames have `step` and `value` columns of one metric. `at_step` must be a logged step of the candidate
    (default: its first).
    """
    cand = candidate.sort_values("step")
    at_step = float(cand["step"].iloc[0]) if at_step is None else float(at_step)
    row = cand[cand["step"] == at_step]
    if row.empty:
        raise ValueError(f"the candidate logged no value at step {at_step:g}; its steps: "
                         f"{', '.join(f'{s:g}' for s in cand['step'])}")
    target = float(row["value"].iloc[0])
    reached = steps_to_reach(baseline["step"].to_numpy(), baseline["value"].to_numpy(), target, lower_is_better)
    return Speedup(at_step, target, reached, None if reached is None else reached / at_step)


def load_curve(run_dir: str | Path, metric: str) -> pd.DataFrame:
    """One metric's (step, value) rows from a training run's `convergence.parquet`, refusing mixed specs."""
    path = Path(run_dir) / "convergence.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} has no convergence.parquet (written by training runs)")
    frame = pd.read_parquet(path)
    rows = frame[frame["metric"] == metric]
    if rows.empty:
        raise ValueError(f"{path} has no {metric!r} rows; it has: {', '.join(sorted(frame['metric'].unique()))}")
    store.check_single_spec(rows)
    return rows
