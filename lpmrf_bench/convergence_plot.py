"""The convergence chart: a validation metric against training progress for several training runs.

With at least two runs, the steps-to-match reading is drawn as the Latent-PMRF paper draws it: a horizontal
arrow at the candidate's value from its curve (at `at_step`) to the point where the baseline (the first run)
first reaches that value, labelled with the ratio of steps (5.78x on the paper's own FID curves), or of training
time or images seen on those axes.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display is assumed

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from lpmrf_bench import store  # noqa: E402
from lpmrf_bench.convergence import Speedup, progress_axis, speedup  # noqa: E402
from lpmrf_bench.metrics import find_metric  # noqa: E402
from lpmrf_bench.plots import wrap_spec  # noqa: E402


def lower_is_better(spec: str) -> bool:
    """Direction from the metric registry; distribution distances (FID and the offline ones) otherwise."""
    found = find_metric(spec)
    return not found.higher_is_better if found else True


def convergence_chart(curves: dict[str, pd.DataFrame], metric: str, x: str = "step",
                      at_step: float | None = None) -> tuple[Figure, list[tuple[str, Speedup]]]:
    """Each run's curve (name -> its convergence rows of `metric`) against training progress `x` (a
    `convergence.PROGRESS_AXES` key); returns the figure and the arrows' readings, one from every other run to the first (the
    baseline), a ratio of progress on the same axis.
    """
    axis = progress_axis(x)
    store.check_single_spec(pd.concat(curves.values()))
    spec = next(iter(curves.values()))["spec"].iloc[0]
    lower = lower_is_better(spec)
    fig, ax = plt.subplots(figsize=(7, 4.6), dpi=120)
    for name, rows in curves.items():
        rows = rows.sort_values("step")
        ax.plot(rows[axis.column], rows["value"], marker="o", ms=3.5, label=name)
    readings = []
    names = list(curves)
    base = curves[names[0]]
    for name in names[1:]:
        reading = speedup(base, curves[name], at_step, lower_is_better=lower, axis=x)
        readings.append((name, reading))
        if reading.baseline_at is None:
            ax.annotate(f"{names[0]} never reaches {reading.target:.4g}", (reading.candidate_at, reading.target),
                        textcoords="offset points", xytext=(6, -12), fontsize=8)
            continue
        ax.annotate("", xy=(reading.baseline_at, reading.target), xytext=(reading.candidate_at, reading.target),
                    arrowprops={"arrowstyle": "->", "lw": 1.6, "color": "black"})
        ax.annotate(f"{reading.ratio:.2f}x", ((reading.candidate_at + reading.baseline_at) / 2, reading.target),
                    textcoords="offset points", xytext=(0, 5), ha="center", fontsize=10, weight="bold")
    if x != "wall":
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 40k, 1.2M
    ax.set_xlabel(axis.label)
    ax.set_ylabel(f"{metric} ({'lower' if lower else 'higher'} is better)\n{wrap_spec(spec)}")
    ax.set_title(f"convergence: {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, readings
