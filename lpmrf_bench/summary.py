"""Set-level values with intervals (`sets.parquet`) and the summary table printed after a run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lpmrf_bench import store
from lpmrf_bench.intervals import bootstrap
from lpmrf_bench.metrics import METRICS
from lpmrf_bench.metrics.base import mean_of_finite
from lpmrf_bench.metrics.setlevel import SET_METRICS
from lpmrf_bench.registry import UnavailableError

REFERENCE_COLUMNS = {"reference": "string", "reference_hash": "string", "reference_n": "Int64"}  # feature-based rows


def _reduction(spec: str):
    """The metric's own set-level reduction (e.g. Deg's <1 degree exclusion); the mean for unknown specs."""
    try:
        return METRICS.get(spec).aggregate
    except (KeyError, UnavailableError):
        return mean_of_finite


def set_values(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per (config, dataset, metric): the metric's own set-level reduction, n, and a 95% bootstrap interval.

    Samples are first averaged per image, so n counts images, not restorations.
    """
    if frame.empty:
        return pd.DataFrame()
    knobs = store.knob_columns(frame)
    ident = ["run_id", "config_id", "method", *knobs, "weights", "dataset", "split", "metric", "spec"]
    per_image = frame.groupby([*ident, "image_id"], dropna=False)["value"].mean().reset_index()
    rows = []
    for key, group in per_image.groupby(ident, dropna=False):
        values = group["value"].to_numpy(dtype=np.float64)
        reduce = _reduction(key[-1])
        interval = bootstrap(values, lambda v: reduce(v).value, seed=seed)
        n = reduce(values).n
        rows.append({**dict(zip(ident, key)), "value": interval.value, "n": n,
                     "ci_low": interval.low, "ci_high": interval.high})
    out = pd.DataFrame(rows)
    for knob in knobs:  # keep integer knobs integer (nullable), as in the per-image rows
        out[knob] = out[knob].astype(frame[knob].dtype)
    return out


def write_sets(run_dir: Path) -> pd.DataFrame:
    """Rewrite the per-image metrics' rows of sets.parquet; feature-based rows (with a `reference`) are kept."""
    frame = set_values(store.load(run_dir))
    path = run_dir / "sets.parquet"
    if path.exists() and "reference" in (old := pd.read_parquet(path)).columns:
        frame = pd.concat([frame, old[old["reference"].notna()]], ignore_index=True)
    for column, dtype in REFERENCE_COLUMNS.items():  # one schema whether or not a set-level metric ran
        if not frame.empty and column not in frame.columns:
            frame[column] = pd.Series(pd.NA, index=frame.index, dtype=dtype)
    if not frame.empty:
        store.write_parquet(run_dir / "sets.parquet", frame)
    return frame


def _few_images_flag(row: pd.Series) -> str:
    """' (n<2048)' on an FID cell from fewer images than the feature dimension: biased upward, not comparable."""
    floor = SET_METRICS[row["metric"]].min_images if row["metric"] in SET_METRICS else 0
    return f" (n<{floor})" if row["n"] < floor else ""


def summarize(run_dir: Path, config_ids: set[str] | None = None) -> pd.DataFrame:
    """method (with knobs) x dataset rows, one `metric` column of "value [low, high]" per metric."""
    sets_path = run_dir / "sets.parquet"
    if not sets_path.exists():
        return pd.DataFrame()
    sets = pd.read_parquet(sets_path)
    if config_ids is not None:
        sets = sets[sets["config_id"].isin(config_ids)]
    if sets.empty:
        return pd.DataFrame()
    knobs = store.knob_columns(sets)
    sets = sets.copy()
    sets["config"] = sets.apply(lambda r: r["method"] + "".join(
        f" {k.removeprefix('knob_')}={r[k]}" for k in knobs if pd.notna(r[k])), axis=1)
    sets["cell"] = sets.apply(lambda r: f"{r['value']:.4g} [{r['ci_low']:.4g}, {r['ci_high']:.4g}]", axis=1)
    sets["cell"] += sets.apply(_few_images_flag, axis=1)
    table = sets.pivot_table(index=["config", "dataset", "split"], columns="metric", values="cell", aggfunc="first")
    n = sets.groupby(["config", "dataset", "split"])["n"].max()
    table.insert(0, "n", n)
    return table.reset_index()
