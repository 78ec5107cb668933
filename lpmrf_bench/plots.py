"""Perception-distortion charts drawn from a run's set-level values.

Each method configuration is a point at (distortion, perception) with its 95% bootstrap interval on both
axes; the configurations of one method that differ only in its PD knob (PMRF's `steps`) are joined in knob
order and labelled, so a `--sweep steps=...` run is a curve. Values with different specs are refused, as
everywhere in the store.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display is assumed

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lpmrf_bench import store  # noqa: E402
from lpmrf_bench.metrics import METRICS  # noqa: E402
from lpmrf_bench.registry import UnavailableError  # noqa: E402
from lpmrf_bench.restorers import get_restorer  # noqa: E402

PERCEPTION_PREFERENCE = ("fid", "kid", "niqe", "musiq", "clipiqa", "lpips")


def pd_knob(method: str) -> str | None:
    """The `knob_<name>` column tracing a method's PD curve, or None (unknown or knob-less methods)."""
    try:
        knob = get_restorer(method).pd_knob
    except (KeyError, UnavailableError, FileNotFoundError):
        return None
    return f"knob_{knob.name}" if knob else None


def _axis_label(sets: pd.DataFrame, metric: str) -> str:
    spec = sets.loc[sets["metric"] == metric, "spec"].iloc[0]
    try:
        arrow = "higher is better" if METRICS.get(spec).higher_is_better else "lower is better"
    except (KeyError, UnavailableError):
        arrow = "direction unknown"
    return f"{metric} ({arrow})\n{spec}"


def default_perception_metric(sets: pd.DataFrame) -> str:
    present = set(sets["metric"])
    for name in PERCEPTION_PREFERENCE:
        if name in present:
            return name
    raise ValueError(f"no perception metric in this run (looked for {', '.join(PERCEPTION_PREFERENCE)}); "
                     f"pass --y with one of: {', '.join(sorted(present))}")


def choose_dataset(sets: pd.DataFrame, dataset: str | None) -> str:
    if sets.empty:
        raise ValueError("the run has no set-level values yet")
    datasets = sorted(sets["dataset"].unique())
    if dataset is None and len(datasets) > 1:
        raise ValueError(f"the run has several datasets; choose one with --dataset ({', '.join(datasets)})")
    if dataset is not None and dataset not in datasets:
        raise ValueError(f"the run has no dataset {dataset!r}; it has: {', '.join(datasets)}")
    return dataset or datasets[0]


def pd_points(sets: pd.DataFrame, x: str, y: str, dataset: str) -> pd.DataFrame:
    """One row per configuration: method, knob columns, x/y values with their interval bounds."""
    rows = sets[sets["dataset"] == dataset]
    for metric in (x, y):
        if metric not in set(rows["metric"]):
            raise ValueError(f"no {metric!r} values for this dataset; it has: {', '.join(sorted(set(rows['metric'])))}")
    rows = rows[rows["metric"].isin([x, y])]
    store.check_single_spec(rows)
    ident = ["config_id", "method", *store.knob_columns(rows)]
    wide = rows.pivot_table(index="config_id", columns="metric", values=["value", "ci_low", "ci_high"])
    wide.columns = [f"{metric}_{stat}" for stat, metric in wide.columns]
    return rows[ident].drop_duplicates("config_id").set_index("config_id").join(wide).reset_index().dropna(
        subset=[f"{x}_value", f"{y}_value"])


def pd_tradeoff(sets: pd.DataFrame, x: str = "psnr", y: str | None = None, dataset: str | None = None) -> Figure:
    """The perception-distortion chart of a run's `sets.parquet` frame."""
    y = y or default_perception_metric(sets)
    dataset = choose_dataset(sets, dataset)
    points = pd_points(sets, x, y, dataset)
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for method, group in points.groupby("method", sort=True):
        knob = pd_knob(method)
        if knob in group.columns:
            group = group.sort_values(knob)
        col = lambda name: group[name].to_numpy(dtype=float)  # noqa: E731
        xs, ys = col(f"{x}_value"), col(f"{y}_value")
        xerr = [xs - col(f"{x}_ci_low"), col(f"{x}_ci_high") - xs]
        yerr = [ys - col(f"{y}_ci_low"), col(f"{y}_ci_high") - ys]
        line = ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, marker="o", capsize=2, label=method,
                           linestyle="-" if knob in group.columns and len(group) > 1 else "none")
        if knob in group.columns:
            for xv, yv, kv in zip(xs, ys, group[knob]):
                ax.annotate(f"{knob.removeprefix('knob_')}={kv}", (xv, yv), textcoords="offset points",
                            xytext=(4, 4), fontsize=7, color=line.lines[0].get_color())
    ax.set_xlabel(_axis_label(sets, x))
    ax.set_ylabel(_axis_label(sets, y))
    ax.set_title(f"perception-distortion: {dataset}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
