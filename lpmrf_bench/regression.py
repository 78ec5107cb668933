"""Regression verdicts: is a candidate run worse than a baseline run, metric by metric?

Each (configuration, dataset, metric) of the baseline is compared with the candidate's, direction-aware.
Per-image metrics: the metric's own set-level reduction of both runs, images resampled jointly (paired
bootstrap on the images both scored). Set-level metrics stored without per-image values (FID, KID from
features): their stored intervals are compared conservatively (difference interval = candidate interval minus
baseline interval), because resampling the features of both runs is not implemented yet. A change is a
regression when its whole interval lies on the worse side beyond the metric's tolerance, an improvement when it
lies on the better side beyond it, otherwise unchanged. Runs that cannot be compared (different specs, datasets,
images, or a baseline row the candidate lacks) raise `IncomparableError` naming every difference.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lpmrf_bench import store
from lpmrf_bench.intervals import Interval, paired_statistic_difference
from lpmrf_bench.metrics import find_metric

# Smallest change worth failing CI for, in each metric's stored unit (README "Reports and CI").
DEFAULT_TOLERANCES: dict[str, float] = {
    "psnr": 0.05, "psnr_y": 0.05,  # dB
    "ssim": 0.002, "ssim_y": 0.002,
    "mse": 1.0,  # 0-255 squared
    "lpips": 0.002,
    "niqe": 0.02,
    "indrmse": 0.1,  # 0-255
    "deg": 0.2,  # degrees
    "lmd": 0.02,  # pixels
    "fid": 0.5, "kid": 0.0005,
}
KEY = ["config", "dataset", "split", "metric"]
VERDICTS = ("regression", "improvement", "unchanged", "undetermined")


class IncomparableError(ValueError):
    """The runs cannot be compared; `differences` names each reason."""

    def __init__(self, differences: list[str]):
        self.differences = differences
        super().__init__("; ".join(differences))


@dataclass(frozen=True)
class Evaluation:
    """Set-level rows and per-image values (samples averaged) of one or more run directories."""

    sets: pd.DataFrame  # sets.parquet rows plus a `config` label column
    values: pd.DataFrame  # config, dataset, split, image_id, metric, spec, value


def load_evaluation(run_dirs: Sequence[str | os.PathLike]) -> Evaluation:
    """The runs' set rows and per-image values; a configuration found in two of them is refused (which to judge?)."""
    sets, values = [], []
    for run_dir in map(Path, run_dirs):
        if not (run_dir / "sets.parquet").exists():
            raise FileNotFoundError(f"{run_dir} has no sets.parquet (not a finished run directory)")
        sets.append(pd.read_parquet(run_dir / "sets.parquet"))
        metrics = store.load(run_dir)
        if not metrics.empty:
            metrics["config"] = store.config_labels(metrics)
            values.append(metrics.groupby(["config", "dataset", "split", "image_id", "metric", "spec"], dropna=False)
                          ["value"].mean().reset_index())
    frame = pd.concat(sets, ignore_index=True)
    frame["config"] = store.config_labels(frame)
    repeated = frame[frame.duplicated(KEY, keep=False)].drop_duplicates(["config", "dataset"])
    if not repeated.empty:
        named = ", ".join(f"{r.config} on {r.dataset}:{r.split}" for r in repeated.itertuples())
        raise IncomparableError([f"{named} appear(s) in more than one of the given runs; give each configuration once"])
    per_image = pd.concat(values, ignore_index=True) if values else pd.DataFrame(columns=[*KEY, "image_id", "spec", "value"])
    return Evaluation(frame, per_image)


@dataclass(frozen=True)
class Comparison:
    config: str
    dataset: str
    split: str
    metric: str
    spec: str
    higher_is_better: bool
    baseline: float
    candidate: float
    change: float  # candidate - baseline
    low: float  # 95% interval of the change
    high: float
    n: int  # images the comparison rests on
    tolerance: float
    how: str  # how the interval was obtained
    verdict: str

    def describe(self) -> str:
        better = "higher" if self.higher_is_better else "lower"
        return (f"{self.verdict.upper()} {self.config} on {self.dataset}:{self.split} {self.metric} ({better} is better): "
                f"{self.baseline:.4g} -> {self.candidate:.4g}, change {self.change:+.4g} [{self.low:+.4g}, {self.high:+.4g}], "
                f"tolerance {self.tolerance:g}; {self.how}")


@dataclass(frozen=True)
class Verdict:
    comparisons: list[Comparison]
    not_in_baseline: list[str]  # candidate rows the baseline does not have (reported, not judged)

    def of(self, verdict: str) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == verdict]

    @property
    def exit_status(self) -> int:
        return 1 if self.of("regression") else 0

    def to_json(self) -> dict[str, Any]:
        def clean(c: Comparison) -> dict[str, Any]:
            return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(c).items()}

        return {"exit_status": self.exit_status, **{v: [clean(c) for c in self.of(v)] for v in VERDICTS},
                "not_in_baseline": self.not_in_baseline}


def classify(low: float, high: float, higher_is_better: bool, tolerance: float) -> str:
    """regression / improvement when the whole interval lies beyond the tolerance on the worse / better side."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "undetermined"
    worse_low, worse_high = (-high, -low) if higher_is_better else (low, high)  # in "how much worse" units
    if worse_low > tolerance:
        return "regression"
    if worse_high < -tolerance:
        return "improvement"
    return "unchanged"


def _image_differences(base: pd.DataFrame, cand: pd.DataFrame) -> list[str]:
    differences = []
    for (dataset, split), rows in base.groupby(["dataset", "split"]):
        theirs = cand[(cand["dataset"] == dataset) & (cand["split"] == split)]
        if theirs.empty:
            continue
        ours, other = set(rows["image_id"]), set(theirs["image_id"])
        if ours != other:
            only_b, only_c = sorted(ours - other), sorted(other - ours)
            differences.append(f"{dataset}:{split}: different images ({len(only_b)} only in the baseline, e.g. "
                               f"{', '.join(only_b[:3]) or '-'}; {len(only_c)} only in the candidate, e.g. "
                               f"{', '.join(only_c[:3]) or '-'})")
    return differences


def check_comparable(base: Evaluation, cand: Evaluation) -> list[str]:
    """Every reason the candidate cannot be judged against the baseline (empty: comparable)."""
    differences = []
    base_specs = base.sets.groupby("metric")["spec"].unique()
    cand_specs = cand.sets.groupby("metric")["spec"].unique()
    for metric in sorted(set(base_specs.index) & set(cand_specs.index)):
        if set(base_specs[metric]) != set(cand_specs[metric]):
            differences.append(f"metric {metric}: baseline spec {', '.join(sorted(base_specs[metric]))}, "
                               f"candidate spec {', '.join(sorted(cand_specs[metric]))}")
    datasets = lambda e: {f"{d}:{s}" for d, s in e.sets[["dataset", "split"]].drop_duplicates().itertuples(index=False)}  # noqa: E731
    if datasets(base) != datasets(cand):
        differences.append(f"datasets: baseline has {', '.join(sorted(datasets(base)))}; "
                           f"candidate has {', '.join(sorted(datasets(cand)))}")
    differences += _image_differences(base.values, cand.values)
    missing = base.sets.merge(cand.sets[KEY], on=KEY, how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    for (config, dataset, split), rows in missing.groupby(["config", "dataset", "split"]):
        differences.append(f"the candidate lacks {config} on {dataset}:{split} "
                           f"({', '.join(sorted(rows['metric']))}), which the baseline has")
    unknown = sorted({s for s in base.sets["spec"] if _metric(s) is None})
    if unknown:
        differences.append(f"no registered metric for spec(s) {', '.join(unknown)}: direction unknown")
    return differences


def _per_image(values: pd.DataFrame) -> dict[tuple, pd.Series]:
    return {key: rows.set_index("image_id")["value"] for key, rows in values.groupby(KEY)}


def _metric(spec: str):
    """The registered metric (per-image or set-level) of a stored spec, else None."""
    return find_metric(spec)


def _compare_row(base_row: pd.Series, cand_row: pd.Series, base_values: pd.Series | None, cand_values: pd.Series | None,
                 tolerance: float, seed: int, resamples: int) -> Comparison:
    spec = _metric(base_row["spec"])
    where = {k: base_row[k] for k in KEY}
    if base_values is not None and cand_values is not None:
        shared = base_values.index.intersection(cand_values.index)
        reduce = lambda v: spec.aggregate(v).value  # noqa: E731
        interval = paired_statistic_difference(cand_values[shared].to_numpy(), base_values[shared].to_numpy(), reduce,
                                               resamples=resamples, seed=seed)
        how = f"paired bootstrap over {len(shared)} shared images"
    else:
        interval = Interval(cand_row["value"] - base_row["value"], cand_row["ci_low"] - base_row["ci_high"],
                            cand_row["ci_high"] - base_row["ci_low"], int(min(cand_row["n"], base_row["n"])))
        how = "stored intervals of the set-level values (no per-image values; features not resampled)"
    return Comparison(
        config=where["config"], dataset=where["dataset"], split=where["split"], metric=where["metric"],
        spec=base_row["spec"], higher_is_better=spec.higher_is_better, baseline=float(base_row["value"]),
        candidate=float(cand_row["value"]), change=interval.value, low=interval.low, high=interval.high, n=interval.n,
        tolerance=tolerance, how=how, verdict=classify(interval.low, interval.high, spec.higher_is_better, tolerance))


def compare(base: Evaluation, cand: Evaluation, tolerances: dict[str, float] | None = None, seed: int = 0,
            resamples: int = 1000) -> Verdict:
    """Judge every baseline row against the candidate; raises `IncomparableError` when that is not meaningful."""
    differences = check_comparable(base, cand)
    if differences:
        raise IncomparableError(differences)
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    cand_rows = cand.sets.set_index(KEY)
    base_values, cand_values = _per_image(base.values), _per_image(cand.values)
    comparisons = []
    for _, row in base.sets.sort_values(KEY).iterrows():
        key = tuple(row[k] for k in KEY)
        comparisons.append(_compare_row(row, cand_rows.loc[key], base_values.get(key), cand_values.get(key),
                                        tolerances.get(row["metric"], 0.0), seed, resamples))
    extra = cand.sets.merge(base.sets[KEY], on=KEY, how="left", indicator=True)
    extra = extra[extra["_merge"] == "left_only"]
    not_in_baseline = [f"{r.config} on {r.dataset}:{r.split} {r.metric}" for r in extra.itertuples()]
    return Verdict(comparisons, not_in_baseline)


def parse_tolerances(items: Sequence[str]) -> dict[str, float]:
    """`metric=value` pairs (`--tolerance psnr=0.1`)."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            tolerance = float(value)
        except ValueError:
            tolerance = -1.0
        if not name.strip() or not tolerance >= 0:
            raise ValueError(f"--tolerance expects METRIC=NON_NEGATIVE_NUMBER, got {item!r}")
        out[name.strip()] = tolerance
    return out


def summary_line(verdict: Verdict) -> str:
    counts = {v: len(verdict.of(v)) for v in VERDICTS}
    return (f"{counts['regression']} regression(s), {counts['improvement']} improvement(s), {counts['unchanged']} "
            f"unchanged" + (f", {counts['undetermined']} undetermined" if counts["undetermined"] else ""))
