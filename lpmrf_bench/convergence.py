"""Training speed read off validation curves: after how much training one method matches another.

Latent-PMRF's "5.79x faster" is such a reading: its FID at 40k steps is first reached by PMRF at ~231k steps
(interpolated between logged steps). The same reading in training time or images seen compares methods whose steps
cost differently. Training runs log the curves in `convergence.parquet` (run_id, step, wall_s, images_seen, metric,
spec, value, n).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lpmrf_bench import store


@dataclass(frozen=True)
class ProgressAxis:
    column: str  # in convergence.parquet
    counts: str  # what a ratio on this axis counts: "5.78x the steps"
    label: str  # the chart's axis label
    point: str  # a point on it, for str.format: "step {:.1f}"


PROGRESS_AXES = {
    "step": ProgressAxis("step", "steps", "training steps", "step {:.1f}"),
    "wall": ProgressAxis("wall_s", "training time", "training wall-clock time (s)", "{:.1f} s of training"),
    "images": ProgressAxis("images_seen", "images", "training images seen", "{:.0f} images seen"),
}


def progress_axis(name: str) -> ProgressAxis:
    if name not in PROGRESS_AXES:
        raise ValueError(f"the progress axis must be one of {', '.join(PROGRESS_AXES)}, got {name!r}")
    return PROGRESS_AXES[name]


@dataclass(frozen=True)
class Speedup:
    candidate_step: float  # the candidate's logged step where its value is read
    target: float  # the candidate's value there
    axis: str  # a PROGRESS_AXES key: what the ratio counts
    candidate_at: float  # the candidate's progress on that axis at candidate_step
    baseline_at: float | None  # first (interpolated) progress at which the baseline reaches target; None if never
    ratio: float | None  # baseline_at / candidate_at
    baseline_last: float  # the baseline's last logged progress on that axis (how far "never" was looked)

    def describe(self, candidate: str, baseline: str, metric: str) -> str:
        """One line, e.g. `latent reaches fid 65.31 at step 40000; pmrf first reaches it at step 231186.4: 5.78x
        the steps`; on the other axes the candidate's progress there is named too."""
        axis = PROGRESS_AXES[self.axis]
        where = f"at step {self.candidate_step:g}"
        if self.axis != "step":
            where += f" ({axis.point.format(self.candidate_at)})"
        line = f"{candidate} reaches {metric} {self.target:.4g} {where}; "
        if self.baseline_at is None:
            last = axis.point.format(self.baseline_last)
            return line + f"{baseline} never reaches it within its logged {axis.counts} (up to {last})"
        reached = axis.point.format(self.baseline_at)
        return line + f"{baseline} first reaches it at {reached}: {self.ratio:.2f}x the {axis.counts}"


def progress_to_reach(progress: np.ndarray, values: np.ndarray, target: float,
                      lower_is_better: bool = True) -> float | None:
    """The first progress (step, time, images) at which the curve reaches `target`, linearly interpolated between
    logged points.

    Logged points in training order; None when the curve never gets there. A curve that starts at or beyond the
    target reaches it at its first point.
    """
    order = np.argsort(progress, kind="stable")
    progress, values = np.asarray(progress, dtype=float)[order], np.asarray(values, dtype=float)[order]
    gap = (values - target) if lower_is_better else (target - values)  # <= 0 once reached
    reached = np.flatnonzero(gap <= 0)
    if reached.size == 0:
        return None
    i = int(reached[0])
    if i == 0:
        return float(progress[0])
    frac = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(progress[i - 1] + frac * (progress[i] - progress[i - 1]))


def speedup(baseline: pd.DataFrame, candidate: pd.DataFrame, at_step: float | None = None,
            lower_is_better: bool = True, axis: str = "step") -> Speedup:
    """How many times more training (steps, wall-clock time or images, by `axis`) the baseline needs to reach the
    candidate's value at `at_step`.

    Both frames have `step`, `value` and the axis's column for one metric. `at_step` must be a logged step of the
    candidate (default: its first). Wall-clock time is the training clock `convergence.parquet` records
    (validation excluded), so its ratio is only as comparable as the two runs' machines.
    """
    column = progress_axis(axis).column
    cand = candidate.sort_values("step")
    at_step = float(cand["step"].iloc[0]) if at_step is None else float(at_step)
    row = cand[cand["step"] == at_step]
    if row.empty:
        raise ValueError(f"the candidate logged no value at step {at_step:g}; its steps: "
                         f"{', '.join(f'{s:g}' for s in cand['step'])}")
    target, candidate_at = float(row["value"].iloc[0]), float(row[column].iloc[0])
    reached = progress_to_reach(baseline[column].to_numpy(), baseline["value"].to_numpy(), target, lower_is_better)
    return Speedup(at_step, target, axis, candidate_at, reached, None if reached is None else reached / candidate_at,
                   float(baseline[column].max()))


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
