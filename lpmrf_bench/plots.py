"""Perception-distortion charts drawn from a run's set-level values.

Each method configuration is a point at (distortion, perception) with its 95% bootstrap interval on both
axes; the configurations of one method that differ only in its PD knob (PMRF's `steps`) are joined in knob
order and labelled, so a `--sweep steps=...` run is a curve. Several runs share one chart (a method found in
more than one run is named with its run); `all` datasets gives one panel each. The Pareto frontier over all
points is marked, and axes of lower-is-better metrics are reversed so the better corner is always the top
right. Values with different specs are refused, as everywhere in the store.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display is assumed

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from lpmrf_bench import store  # noqa: E402
from lpmrf_bench.metrics import find_metric  # noqa: E402
from lpmrf_bench.pd_axes import DISTORTION_DEFAULT, PERCEPTION_PREFERENCE  # noqa: E402
from lpmrf_bench.registry import UnavailableError  # noqa: E402
from lpmrf_bench.restorers import get_restorer  # noqa: E402


def pd_knob(method: str) -> str | None:
    """The `knob_<name>` column tracing a method's PD curve, or None (unknown or knob-less methods)."""
    try:
        knob = get_restorer(method).pd_knob
    except (KeyError, UnavailableError, FileNotFoundError):
        return None
    return f"knob_{knob.name}" if knob else None


def higher_is_better(sets: pd.DataFrame, metric: str) -> bool | None:
    """The metric's direction from the registry (None when its spec is not registered)."""
    spec = sets.loc[sets["metric"] == metric, "spec"].iloc[0]
    found = find_metric(spec)
    return found.higher_is_better if found else None


def wrap_spec(spec: str, width: int = 48) -> str:
    """A long spec broken after its `/` separators into lines of at most `width` characters (where it can be),
    so a vertical axis label fits the axis; joining the lines gives the spec back."""
    parts = spec.split("/")
    lines = [""]
    for token in [p + "/" for p in parts[:-1]] + parts[-1:]:
        if lines[-1] and len(lines[-1]) + len(token) > width:
            lines.append(token)
        else:
            lines[-1] += token
    return "\n".join(lines)


def _axis_label(sets: pd.DataFrame, metric: str, horizontal: bool) -> str:
    spec = sets.loc[sets["metric"] == metric, "spec"].iloc[0]
    spec = spec if horizontal else wrap_spec(spec)
    better = higher_is_better(sets, metric)
    if better is None:
        return f"{metric} (direction unknown)\n{spec}"
    toward = "right" if horizontal else "up"
    flipped = "" if better else ", axis reversed"
    return f"{metric} ({'higher' if better else 'lower'} is better{flipped}: better is {toward})\n{spec}"


def pareto_frontier(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both axes (larger is better on both), by increasing x."""
    keep = [i for i in range(len(xs))
            if not np.any((xs >= xs[i]) & (ys >= ys[i]) & ((xs > xs[i]) | (ys > ys[i])))]
    return np.array(sorted(keep, key=lambda i: (xs[i], -ys[i])), dtype=int)


def default_perception_metric(sets: pd.DataFrame) -> str:
    present = set(sets["metric"])
    for name in PERCEPTION_PREFERENCE:
        if name in present:
            return name
    raise ValueError(f"no perception metric in the run(s) (looked for {', '.join(PERCEPTION_PREFERENCE)}); "
                     f"pass --y with one of: {', '.join(sorted(present))}")


def choose_datasets(sets: pd.DataFrame, dataset: str | None) -> list[str]:
    """The `name:split` panels to draw: the one asked for (by `name:split`, or `name` when it has one split),
    every one for `all`, or the only one there is."""
    if sets.empty:
        raise ValueError("the run has no set-level values yet")
    panels = sorted(set(sets["dataset"] + ":" + sets["split"]))
    if dataset == "all":
        return panels
    matches = panels if dataset is None else [p for p in panels if dataset in (p, p.rpartition(":")[0])]
    if not matches:
        raise ValueError(f"the runs have no dataset {dataset!r}; they have: {', '.join(panels)}")
    if len(matches) > 1:
        raise ValueError(f"the runs have several datasets; choose one with --dataset NAME:SPLIT, or `all` "
                         f"({', '.join(matches)})")
    return matches


def pd_points(sets: pd.DataFrame, x: str, y: str, dataset: str) -> pd.DataFrame:
    """One row per configuration (and run) on `dataset` (`name:split`): method, label, knob columns, x/y values
    with their interval bounds."""
    rows = sets[sets["dataset"] + ":" + sets["split"] == dataset]
    for metric in (x, y):
        if metric not in set(rows["metric"]):
            raise ValueError(f"no {metric!r} values for {dataset}; it has: {', '.join(sorted(set(rows['metric'])))}")
    rows = rows[rows["metric"].isin([x, y])]
    ident = ["run", "config_id", "method", "label", *store.knob_columns(rows)]
    wide = rows.pivot_table(index=["run", "config_id"], columns="metric", values=["value", "ci_low", "ci_high"])
    wide.columns = [f"{metric}_{stat}" for stat, metric in wide.columns]
    points = rows[ident].drop_duplicates(["run", "config_id"]).set_index(["run", "config_id"]).join(wide)
    return points.reset_index().dropna(subset=[f"{x}_value", f"{y}_value"])


def with_labels(sets: pd.DataFrame) -> pd.DataFrame:
    """A `label` per row: the method, with its run's name when the method comes from several runs."""
    sets = sets.assign(run=sets["run"] if "run" in sets else "")
    runs = sets.groupby("method")["run"].nunique()
    return sets.assign(label=[m if runs[m] == 1 else f"{m} ({r})" for m, r in zip(sets["method"], sets["run"])])


KnobLabel = tuple[float, float, str, str]  # x, y, text, colour
# points: right-above, right-below, left-above, left-below, right, left
LABEL_OFFSETS = ((4, 4), (4, -11), (-4, 4), (-4, -11), (8, -3), (-8, -3))
MARKER_HALF_SIDE = 5.5  # points: half the Pareto frontier's square, the largest marker drawn


def place_labels(ax, labels: list[KnobLabel], points: list[tuple[float, float]]) -> None:
    """Put each knob label beside its point at the first offset where it overlaps no label already placed and
    no other point's marker.

    A label with no free offset is left out: its point stays on the curve between labelled neighbours, which
    reads better than a pile of overlapping text. Labels also keep off the legend. Run after the layout is final
    (positions are in pixels).
    """
    renderer = ax.figure.canvas.get_renderer()
    placed = [ax.get_legend().get_window_extent(renderer)] if ax.get_legend() else []
    half = MARKER_HALF_SIDE * ax.figure.dpi / 72
    centres = {point: ax.transData.transform(point) for point in points}
    markers = {point: Bbox.from_extents(*(c - half), *(c + half)) for point, c in centres.items()}
    for xv, yv, text, colour in labels:
        obstacles = placed + [box for point, box in markers.items() if point != (xv, yv)]
        for dx, dy in LABEL_OFFSETS:
            note = ax.annotate(text, (xv, yv), textcoords="offset points", xytext=(dx, dy), fontsize=7, color=colour,
                               ha="left" if dx > 0 else "right")
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in obstacles):
                placed.append(box)
                break
            note.remove()


def _draw_panel(ax, sets: pd.DataFrame, points: pd.DataFrame, x: str, y: str, dataset: str,
                colours: dict[str, str]) -> list[KnobLabel]:
    """Draw one dataset's points and curves; return the knob labels to place once the layout is final."""
    labels: list[KnobLabel] = []
    for label, group in points.groupby("label", sort=True):
        knob = pd_knob(group["method"].iloc[0])
        if knob in group.columns:
            group = group.sort_values(knob)
        col = lambda name: group[name].to_numpy(dtype=float)  # noqa: E731
        xs, ys = col(f"{x}_value"), col(f"{y}_value")
        # A set-level bootstrap interval (FD) can lie wholly above its value; the bar then spans value..ci_high.
        xerr = np.clip([xs - col(f"{x}_ci_low"), col(f"{x}_ci_high") - xs], 0, None)
        yerr = np.clip([ys - col(f"{y}_ci_low"), col(f"{y}_ci_high") - ys], 0, None)
        line = ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, marker="o", capsize=2, label=label, color=colours[label],
                           linestyle="-" if knob in group.columns and len(group) > 1 else "none")
        if knob in group.columns:
            texts = [f"{knob.removeprefix('knob_')}={store.knob_text(kv)}" for kv in group[knob]]
            ends_first = dict.fromkeys([0, len(texts) - 1, *range(1, len(texts) - 1)])  # a curve's ends keep theirs
            labels += [(xs[i], ys[i], texts[i], line.lines[0].get_color()) for i in ends_first]
    x_better, y_better = higher_is_better(sets, x), higher_is_better(sets, y)
    if x_better is not None and y_better is not None and len(points) > 1:
        gx = points[f"{x}_value"].to_numpy(float) * (1 if x_better else -1)
        gy = points[f"{y}_value"].to_numpy(float) * (1 if y_better else -1)
        front = pareto_frontier(gx, gy)
        ax.plot(points[f"{x}_value"].to_numpy(float)[front], points[f"{y}_value"].to_numpy(float)[front], ls="--",
                color="0.45", lw=1, marker="s", mfc="none", ms=11, zorder=0, label="Pareto frontier")
    if x_better is False:
        ax.invert_xaxis()
    if y_better is False:
        ax.invert_yaxis()
    ax.set_xlabel(_axis_label(sets, x, horizontal=True))
    ax.set_ylabel(_axis_label(sets, y, horizontal=False))
    ax.set_title(f"perception-distortion: {dataset}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return labels


def pd_tradeoff(sets: pd.DataFrame, x: str = DISTORTION_DEFAULT, y: str | None = None, dataset: str | None = None) -> Figure:
    """The perception-distortion chart of `sets.parquet` rows (of one run, or several with a `run` column).

    One panel per dataset (`dataset="all"`); the better corner is the top right for every metric pair.
    """
    y = y or default_perception_metric(sets)
    datasets = choose_datasets(sets, dataset)
    store.check_single_spec(sets[sets["metric"].isin([x, y])])
    sets = with_labels(sets)
    colours = {label: f"C{i % 10}" for i, label in enumerate(sorted(sets["label"].unique()))}  # same in every panel
    panels = [(name, pd_points(sets, x, y, name)) for name in datasets]
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 * cols, 5.2 * rows), dpi=120, squeeze=False)
    labels = [_draw_panel(ax, sets, points, x, y, name, colours) for ax, (name, points) in zip(axes.flat, panels)]
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    for ax, panel_labels, (_, points) in zip(axes.flat, labels, panels):
        xy = zip(points[f"{x}_value"].astype(float), points[f"{y}_value"].astype(float))
        place_labels(ax, panel_labels, list(xy))
    return fig
