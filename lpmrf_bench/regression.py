"""Regression verdicts: is a candidate run worse than a baseline run, metric by metric?

Each (configuration, dataset, metric) of the baseline is compared with the candidate's, direction-aware.
Per-image metrics: the metric's own set-level reduction of both runs, images resampled jointly (paired
bootstrap on the images both scored). Set-level metrics (FID, fd_mobilenet, ...): when both runs hold the
stored features, metric(candidate) - metric(baseline) against the shared reference with the same image indices
resampled for both (`setlevel.paired_difference`); otherwise (the committed baseline keeps no features) their
stored intervals are compared conservatively (difference interval = candidate interval minus baseline
interval). Each comparison records which of the three it rests on (`basis`). A change is a regression when its
whole interval lies on the worse side beyond the metric's tolerance, an improvement when it lies on the better
side beyond it, otherwise unchanged. Runs that cannot be compared (different specs, references, datasets,
images, or a baseline row the candidate lacks) raise `IncomparableError` naming every difference.
"""
from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lpmrf_bench import store
from lpmrf_bench.intervals import Interval, paired_statistic_difference
from lpmrf_bench.metrics import find_metric
from lpmrf_bench.metrics.extractors import EXTRACTORS
from lpmrf_bench.metrics.references import ReferenceMissingError, get_reference
from lpmrf_bench.metrics.setlevel import BOOTSTRAP_RESAMPLES, SetMetric, paired_difference
from lpmrf_bench.set_scoring import sample0_features

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
# What a comparison's interval rests on (`Comparison.basis`).
PAIRED_IMAGES, PAIRED_FEATURES, STORED_INTERVALS = "paired-images", "paired-features", "stored-intervals"


class IncomparableError(ValueError):
    """The runs cannot be compared; `differences` names each reason."""

    def __init__(self, differences: list[str]):
        self.differences = differences
        super().__init__("; ".join(differences))


@dataclass(frozen=True)
class Evaluation:
    """Set-level rows and per-image values (samples averaged) of one or more run directories."""

    sets: pd.DataFrame  # sets.parquet rows plus a `config` label column and the `run_dir` holding each
    values: pd.DataFrame  # config, dataset, split, image_id, metric, spec, value


def load_evaluation(run_dirs: Sequence[str | os.PathLike]) -> Evaluation:
    """The runs' set rows and per-image values; a configuration found in two of them is refused (which to judge?)."""
    sets, values = [], []
    for run_dir in map(Path, run_dirs):
        if not (run_dir / "sets.parquet").exists():
            raise FileNotFoundError(f"{run_dir} has no sets.parquet (not a finished run directory)")
        sets.append(pd.read_parquet(run_dir / "sets.parquet").assign(run_dir=str(run_dir)))
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
    basis: str  # PAIRED_IMAGES, PAIRED_FEATURES or STORED_INTERVALS
    how: str  # how the interval was obtained, in words
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
    differences += _reference_differences(base.sets, cand.sets)
    unknown = sorted({s for s in base.sets["spec"] if _metric(s) is None})
    if unknown:
        differences.append(f"no registered metric for spec(s) {', '.join(unknown)}: direction unknown")
    return differences


def _reference_differences(base: pd.DataFrame, cand: pd.DataFrame) -> list[str]:
    """Set-level values computed against different references (name or content) measure different things."""
    columns = ["reference", "reference_hash"]
    pairs = base.reindex(columns=[*KEY, *columns]).merge(cand.reindex(columns=[*KEY, *columns]), on=KEY,
                                                         suffixes=("_base", "_cand"))
    pairs = pairs.astype({f"{c}_{side}": object for c in columns for side in ("base", "cand")}).fillna("none")
    differ = pairs[(pairs["reference_base"] != pairs["reference_cand"])
                   | (pairs["reference_hash_base"] != pairs["reference_hash_cand"])]
    differences = []
    for (dataset, split, name_b, hash_b, name_c, hash_c), rows in differ.groupby(
            ["dataset", "split", "reference_base", "reference_hash_base", "reference_cand", "reference_hash_cand"]):
        differences.append(f"{dataset}:{split} {', '.join(sorted(set(rows['metric'])))} "
                           f"({', '.join(sorted(set(rows['config'])))}): baseline against reference {name_b} "
                           f"(content {hash_b[:12]}), candidate against reference {name_c} (content {hash_c[:12]})")
    return differences


def _per_image(values: pd.DataFrame) -> dict[tuple, pd.Series]:
    return {key: rows.set_index("image_id")["value"] for key, rows in values.groupby(KEY)}


def _metric(spec: str):
    """The registered metric (per-image or set-level) of a stored spec, else None."""
    return find_metric(spec)


class _StoredFeatures:
    """The runs' stored features and the named references, each read once per verdict."""

    def __init__(self) -> None:
        self.features = functools.cache(sample0_features)
        self.reference = functools.cache(lambda name, extractor: get_reference(name, EXTRACTORS.get(extractor), None))

    def of(self, row: pd.Series, dataset: str, split: str, extractor_spec: str) -> pd.Series:
        """The sample-0 features of a set row's configuration, by image_id (empty when its run stored none)."""
        if pd.isna(row.get("run_dir")) or pd.isna(row.get("config_id")):
            return pd.Series(dtype=object)
        wide = self.features(Path(row["run_dir"]), extractor_spec, dataset, split)
        return wide[row["config_id"]].dropna() if row["config_id"] in wide.columns else pd.Series(dtype=object)


def _paired_features(metric: SetMetric, base_row: pd.Series, cand_row: pd.Series, stored: _StoredFeatures,
                     seed: int) -> tuple[Interval | None, str]:
    """metric(candidate) - metric(baseline) with the same images resampled for both runs' features, against the
    reference both values were computed with; or None and why that cannot be done here."""
    name, content = base_row.get("reference"), base_row.get("reference_hash")
    if pd.isna(name) or pd.isna(content):
        return None, "no reference recorded with the values"
    extractor = EXTRACTORS.get(metric.extractor)
    where = (base_row["dataset"], base_row["split"], extractor.spec)
    base, cand = stored.of(base_row, *where), stored.of(cand_row, *where)
    lacking = [side for side, feats in (("baseline", base), ("candidate", cand)) if feats.empty]
    if lacking:
        return None, f"no stored {extractor.name} features in the {' and the '.join(lacking)}"
    shared = base.index.intersection(cand.index).sort_values()
    if len(shared) < 2:
        return None, f"{len(shared)} image(s) with {extractor.name} features in both runs"
    try:
        reference = stored.reference(name, metric.extractor)
    except ReferenceMissingError as exc:
        return None, f"reference {name} not available here: {exc}"
    if reference.content_hash != content:
        return None, (f"the reference {name} cached here (content {reference.content_hash[:12]}) is not the one the "
                      f"values were computed against ({content[:12]})")
    score = paired_difference(metric, np.stack(cand[shared].to_numpy()), np.stack(base[shared].to_numpy()), reference,
                              seed=seed)
    return (Interval(score.value, score.ci_low, score.ci_high, score.n),
            f"paired bootstrap of {extractor.name} features over {score.n} shared images against reference {name} "
            f"({BOOTSTRAP_RESAMPLES} resamples)")


def _compare_row(base_row: pd.Series, cand_row: pd.Series, base_values: pd.Series | None, cand_values: pd.Series | None,
                 stored: _StoredFeatures, tolerance: float, seed: int, resamples: int) -> Comparison:
    spec = _metric(base_row["spec"])
    where = {k: base_row[k] for k in KEY}
    interval: Interval | None = None
    if base_values is not None and cand_values is not None:
        shared = base_values.index.intersection(cand_values.index)
        reduce = lambda v: spec.aggregate(v).value  # noqa: E731
        interval = paired_statistic_difference(cand_values[shared].to_numpy(), base_values[shared].to_numpy(), reduce,
                                               resamples=resamples, seed=seed)
        basis, how = PAIRED_IMAGES, f"paired bootstrap over {len(shared)} shared images"
    elif isinstance(spec, SetMetric):
        interval, how = _paired_features(spec, base_row, cand_row, stored, seed)
        basis = PAIRED_FEATURES
    else:
        how = "no per-image values"
    if interval is None:
        interval = Interval(cand_row["value"] - base_row["value"], cand_row["ci_low"] - base_row["ci_high"],
                            cand_row["ci_high"] - base_row["ci_low"], int(min(cand_row["n"], base_row["n"])))
        basis, how = STORED_INTERVALS, f"stored intervals of the set-level values ({how})"
    return Comparison(
        config=where["config"], dataset=where["dataset"], split=where["split"], metric=where["metric"],
        spec=base_row["spec"], higher_is_better=spec.higher_is_better, baseline=float(base_row["value"]),
        candidate=float(cand_row["value"]), change=interval.value, low=interval.low, high=interval.high, n=interval.n,
        tolerance=tolerance, basis=basis, how=how,
        verdict=classify(interval.low, interval.high, spec.higher_is_better, tolerance))


def compare(base: Evaluation, cand: Evaluation, tolerances: dict[str, float] | None = None, seed: int = 0,
            resamples: int = 1000) -> Verdict:
    """Judge every baseline row against the candidate; raises `IncomparableError` when that is not meaningful."""
    differences = check_comparable(base, cand)
    if differences:
        raise IncomparableError(differences)
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    cand_rows = cand.sets.set_index(KEY)
    base_values, cand_values = _per_image(base.values), _per_image(cand.values)
    stored = _StoredFeatures()
    comparisons = []
    for _, row in base.sets.sort_values(KEY).iterrows():
        key = tuple(row[k] for k in KEY)
        comparisons.append(_compare_row(row, cand_rows.loc[key], base_values.get(key), cand_values.get(key), stored,
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
