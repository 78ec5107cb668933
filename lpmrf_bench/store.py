"""The run directory: Parquet tables written crash-safely, and the API plots and reports read.

Layout (README "Store schema"):
  manifest.json            run identity, protocol, seed, datasets, environment, every command line
  metrics/part-*.parquet   long format, one row per (config, dataset, image, sample, metric)
  images.parquet           per image: input conversions, degradation parameters
  errors.parquet           per failed (config, dataset, image, sample): stage and reason
  perf.parquet             per config and dataset: images/s, seconds per metric, peak memory, device
  sets.parquet             set-level values with n and a 95% bootstrap interval
  features/part-*.parquet  per-image feature vectors of the outputs, one row per (config, dataset, image,
                           sample, extractor), for set-level metrics (FID-like) without re-running restorers;
                           a paired dataset's ground truth under config_id and method GROUND_TRUTH
  outputs/                 restored PNGs (--save-images)

Every write goes to a temporary name and is renamed into place, so a killed process leaves either a
whole part or none. images/errors/perf are appended as parts under `.parts/<table>/` during a run and
folded into their single file by `consolidate`, which is idempotent (rows are de-duplicated by key),
so a kill at any point of it loses nothing and duplicates nothing.
"""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lpmrf_bench.atomic import atomic_write
from lpmrf_bench.intervals import Interval, paired_difference

METRIC_KEY = ["config_id", "dataset", "split", "image_id", "sample", "metric"]
FEATURE_KEY = ["config_id", "dataset", "split", "image_id", "sample", "extractor"]
GROUND_TRUTH = "ground-truth"  # config_id and method of ground-truth features; also the reference's name
ERROR_COLUMNS = {"run_id": "string", "config_id": "string", "method": "string", "dataset": "string", "split": "string",
                 "image_id": "string", "sample": "int64", "stage": "string", "reason": "string"}
TABLE_KEYS: dict[str, list[str]] = {
    "images": ["dataset", "split", "image_id"],
    "errors": ["config_id", "dataset", "split", "image_id", "sample"],
    "perf": ["config_id", "dataset", "split", "invocation"],
}
PERF_METRIC_SECONDS = "metric_seconds_"  # perf column prefix: seconds spent in one metric (e.g. metric_seconds_ssim)


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str)))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    atomic_write(path, lambda p: pq.write_table(table, p))


def write_part(folder: Path, rows: Iterable[dict[str, Any]] | pd.DataFrame) -> Path | None:
    """Write rows as a new `part-*.parquet` in `folder`; returns its path (None when there are no rows)."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        return None
    path = folder / f"part-{uuid.uuid4().hex}.parquet"
    write_parquet(path, frame)
    return path


def _nullable(pa_type: pa.DataType) -> Any:
    """Keep integer and boolean columns with missing values integer/boolean (knob columns are sparse)."""
    if pa.types.is_integer(pa_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(pa_type):
        return pd.BooleanDtype()
    return None


def read_parts(paths: Iterable[Path]) -> pd.DataFrame:
    tables = [pq.read_table(p) for p in sorted(paths)]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pd.DataFrame()
    merged = pa.concat_tables(tables, promote_options="permissive")
    return merged.to_pandas(types_mapper=_nullable)


def _parts_dir(run_dir: Path, table: str) -> Path:
    return run_dir / ".parts" / table


def append(run_dir: str | os.PathLike, table: str, rows: Iterable[dict[str, Any]] | pd.DataFrame) -> None:
    """Append rows to images/errors/perf (as a part until the next `consolidate`)."""
    if table in ("metrics", "features"):
        write_part(Path(run_dir) / table, rows)
    else:
        write_part(_parts_dir(Path(run_dir), table), rows)


def _dedupe(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    if frame.empty:
        return frame
    cols = [c for c in key if c in frame.columns]
    return frame.drop_duplicates(subset=cols, keep="last").reset_index(drop=True)


def load_table(run_dir: str | os.PathLike, table: str) -> pd.DataFrame:
    """images, errors or perf: the consolidated file plus any parts not yet folded in."""
    run_dir = Path(run_dir)
    sources = [run_dir / f"{table}.parquet"] if (run_dir / f"{table}.parquet").exists() else []
    sources += sorted(_parts_dir(run_dir, table).glob("part-*.parquet"))
    frame = read_parts(sources)
    frame = _dedupe(frame, TABLE_KEYS[table])
    if table == "errors" and not frame.empty:
        done = load(run_dir, columns=["config_id", "dataset", "split", "image_id", "sample"])
        if not done.empty:
            key = TABLE_KEYS["errors"]
            resolved = frame.merge(done.drop_duplicates(), on=key, how="left", indicator=True)["_merge"] == "both"
            frame = frame[~resolved.to_numpy()].reset_index(drop=True)
    return frame


def consolidate(run_dir: str | os.PathLike) -> None:
    """Fold the parts of images/errors/perf into their single files, then remove the folded parts.

    The metric parts are compacted into one part with the union of all columns (parts written by methods
    with different knobs differ in their `knob_*` columns, which readers that take the first file's schema
    would drop). A kill between writing the compacted part and removing the old ones leaves duplicates that
    `load` drops and the next consolidation removes.
    """
    run_dir = Path(run_dir)
    metric_parts = sorted((run_dir / "metrics").glob("part-*.parquet"))
    if len(metric_parts) > 1:
        write_part(run_dir / "metrics", load(run_dir))
        for part in metric_parts:
            part.unlink()
    for table in TABLE_KEYS:
        parts = sorted(_parts_dir(run_dir, table).glob("part-*.parquet"))
        if not parts:
            continue
        frame = load_table(run_dir, table)
        write_parquet(run_dir / f"{table}.parquet", frame)
        for part in parts:
            part.unlink(missing_ok=True)
    if not (run_dir / "errors.parquet").exists():  # a clean run says so with an empty table of the same schema
        write_parquet(run_dir / "errors.parquet", pd.DataFrame({c: pd.Series(dtype=t) for c, t in ERROR_COLUMNS.items()}))


def load(run_dir: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """All per-image metric rows of a run (long format; README "Store schema")."""
    parts = sorted((Path(run_dir) / "metrics").glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame(columns=columns or [])
    frame = _dedupe(read_parts(parts), METRIC_KEY)
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    return frame


def load_sets(run_dirs: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """The `sets.parquet` rows of several runs, with a `run` column (the directory's name) saying whose."""
    frames = []
    for run_dir in map(Path, run_dirs):
        if not (run_dir / "sets.parquet").exists():
            raise FileNotFoundError(f"{run_dir} has no sets.parquet: run `lpmrf-bench run --out {run_dir}` first")
        frames.append(pd.read_parquet(run_dir / "sets.parquet").assign(run=run_dir.resolve().name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_features(run_dir: str | os.PathLike, extractor: str | None = None) -> pd.DataFrame:
    """Stored per-image features (one row per FEATURE_KEY, `feature` a float32 list), optionally of one extractor."""
    parts = sorted((Path(run_dir) / "features").glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame(columns=[*FEATURE_KEY, "feature"])
    if extractor is not None:
        tables = [pq.read_table(p, filters=[("extractor", "==", extractor)]) for p in parts]
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return pd.DataFrame(columns=[*FEATURE_KEY, "feature"])
        frame = pa.concat_tables(tables, promote_options="permissive").to_pandas(types_mapper=_nullable)
    else:
        frame = read_parts(parts)
    return _dedupe(frame, FEATURE_KEY)


def knob_columns(frame: pd.DataFrame) -> list[str]:
    return sorted(c for c in frame.columns if c.startswith("knob_"))


def config_labels(frame: pd.DataFrame) -> pd.Series:
    """"method knob=v ..." per row: how tables, charts and verdicts name a configuration."""
    knobs = knob_columns(frame)
    labels = [method + "".join(f" {k.removeprefix('knob_')}={knob_text(v)}" for k, v in zip(knobs, values) if pd.notna(v))
              for method, *values in frame[["method", *knobs]].itertuples(index=False)]
    return pd.Series(labels, index=frame.index, dtype=object)


def knob_text(value: object) -> str:
    """A knob value as typed: an integer knob read back as float (a column with gaps) shows as `25`, not `25.0`."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def find_config(frame: pd.DataFrame, name: str) -> str:
    """The config_id a user means by `name`: a config_id, a label as the summary shows it ("pmrf steps=25"), or
    a method name with one configuration in `frame`. ValueError naming the run's configurations otherwise."""
    configs = frame.drop_duplicates("config_id").reset_index(drop=True)
    labels = config_labels(configs)
    for column in (configs["config_id"], labels, configs["method"]):
        hits = configs.loc[(column == name).to_numpy(), "config_id"]
        if len(hits) == 1:
            return str(hits.iloc[0])
        if len(hits) > 1:
            raise ValueError(f"{name!r} matches {len(hits)} configurations ({', '.join(labels[hits.index])}); "
                             "name one by its label or config_id")
    listed = ", ".join(f"{label} ({cid})" for label, cid in zip(labels, configs["config_id"])) or "none"
    raise ValueError(f"no configuration {name!r} in this run; its configurations: {listed}")


class MixedSpecsError(ValueError):
    """Values of one metric computed under different specs were to be compared (incomparable input: exit 2)."""


def check_single_spec(frame: pd.DataFrame) -> None:
    """Refuse to compare values of one metric computed under different conventions."""
    if frame.empty:
        return
    specs = frame.groupby("metric")["spec"].unique()
    mixed = {m: sorted(s) for m, s in specs.items() if len(s) > 1}
    if mixed:
        detail = "; ".join(f"{m}: {', '.join(s)}" for m, s in mixed.items())
        raise MixedSpecsError(f"refusing to compare values computed under different specs ({detail}); "
                              "filter by `spec` first")


def aggregate(frame: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Mean per method configuration x dataset x metric (samples first averaged per image), with n.

    Non-finite per-image values (PSNR of identical images) are left out of the mean; `n` counts the
    images that entered it.
    """
    if frame.empty:
        return pd.DataFrame()
    check_single_spec(frame)
    group = by or ["method", *knob_columns(frame), "weights", "dataset", "split", "metric", "spec"]
    per_image = frame.groupby([*group, "config_id", "image_id"], dropna=False)["value"].mean().reset_index()
    per_image = per_image[np.isfinite(per_image["value"].astype(float))]
    out = per_image.groupby(group, dropna=False)["value"].agg(mean="mean", n="count").reset_index()
    return out


def per_image(frame: pd.DataFrame) -> pd.DataFrame:
    """Per configuration x dataset x image x metric: mean over samples, between-sample std, sample count."""
    group = ["config_id", "method", *knob_columns(frame), "weights", "dataset", "split", "image_id", "metric", "spec"]
    stats = frame.groupby(group, dropna=False)["value"].agg(mean="mean", std="std", samples="count").reset_index()
    return stats


def compare(frame: pd.DataFrame, config_a: str, config_b: str, metric: str, dataset: str | None = None,
            seed: int = 0) -> Interval:
    """mean(a - b) of a metric over the images both configurations scored, with a paired bootstrap interval."""
    rows = frame[frame["metric"] == metric]
    if dataset is not None:
        rows = rows[rows["dataset"] == dataset]
    check_single_spec(rows[rows["config_id"].isin([config_a, config_b])])
    means = per_image(rows)
    wide = means.pivot_table(index=["dataset", "split", "image_id"], columns="config_id", values="mean")
    for config in (config_a, config_b):
        if config not in wide.columns:
            raise ValueError(f"no {metric} values for configuration {config}")
    both = wide[[config_a, config_b]].dropna()
    return paired_difference(both[config_a].to_numpy(), both[config_b].to_numpy(), seed=seed)
