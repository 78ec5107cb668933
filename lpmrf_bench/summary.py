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
                     "ci_low": interval.low, "ci_high": interval.high, "n_inf": int(np.isinf(values).sum())})
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


def _infinite_note(row: pd.Series) -> str:
    """How many images were infinite (PSNR of an output identical to its ground truth), or nothing."""
    n_inf = row.get("n_inf", 0)
    if pd.isna(n_inf) or not n_inf:
        return ""
    return f" ({int(n_inf)} identical)" if str(row["metric"]).startswith("psnr") else f" ({int(n_inf)} inf)"


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
    sets = sets.copy()
    sets["config"] = store.config_labels(sets)
    sets["cell"] = sets.apply(lambda r: f"{r['value']:.4g} [{r['ci_low']:.4g}, {r['ci_high']:.4g}]", axis=1)
    sets["cell"] += sets.apply(_infinite_note, axis=1)
    sets["cell"] += sets.apply(_few_images_flag, axis=1)
    table = sets.pivot_table(index=["config", "dataset", "split"], columns="metric", values="cell", aggfunc="first")
    n = sets.groupby(["config", "dataset", "split"])["n"].max()
    table.insert(0, "n", n)
    return table.reset_index()


def timings(run_dir: Path) -> pd.DataFrame:
    """Where the time went, from `perf.parquet`: per config, dataset and stage (`restore`, then each metric),
    the seconds and images summed over every command that wrote to the run, images/s, and the stage's share
    of that config's time on that dataset."""
    perf = store.load_table(run_dir, "perf")
    if perf.empty:
        return pd.DataFrame()
    metrics = {c: c.removeprefix(store.PERF_METRIC_SECONDS) for c in perf.columns if c.startswith(store.PERF_METRIC_SECONDS)}
    perf = perf.rename(columns=metrics).assign(restore=perf["restorations"] / perf["restore_images_per_s"])
    stages = ["restore", *metrics.values()]
    ident = ["method", "config_id", "dataset", "split"]
    long = perf.melt(id_vars=[*ident, "restorations"], value_vars=stages, var_name="stage", value_name="seconds")
    long = long.dropna(subset=["seconds"]).groupby([*ident, "stage"], sort=False)[["seconds", "restorations"]].sum()
    long = long.reset_index().rename(columns={"restorations": "images"})
    long["images_per_s"] = long["images"] / long["seconds"].clip(lower=1e-9)
    long["share"] = long["seconds"] / long.groupby(ident)["seconds"].transform("sum")
    return long
