"""Set-level values of a run from its stored features: features/ + a named reference -> rows of sets.parquet.

Used at the end of `lpmrf-bench run` and by `lpmrf-bench rescore`; no restorer is involved. One value per
(configuration, dataset, metric, reference), from sample 0 of each image (n counts images), with a bootstrap
interval over the images; the reference's name, content hash and size are stored beside it.

The ground truth's features (config_id `ground-truth`, written for paired datasets) are never scored as a
configuration: they are the reference `ground-truth`, the same dataset's real images from the same run.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lpmrf_bench import store
from lpmrf_bench.metrics.extractors import EXTRACTORS, FeatureExtractor, FeatureFn
from lpmrf_bench.metrics.references import (GROUND_TRUTH_REFERENCE, Reference, ReferenceMissingError, default_reference,
                                            get_reference)
from lpmrf_bench.metrics.setlevel import SetMetric, SetScore, paired_difference, score

SET_KEY = ["config_id", "dataset", "split", "metric", "spec", "reference"]
CONFIG_COLUMNS = ["run_id", "config_id", "method", "weights"]  # plus the knob_* columns


class LazyExtractors:
    """Builds an extractor's network only when a reference must be computed (cached references need none)."""

    def __init__(self, device: torch.device, weights_dir: str | None, built: dict[str, FeatureFn] | None = None):
        self.device, self.weights_dir = device, weights_dir
        self.built: dict[str, FeatureFn] = dict(built or {})

    def __call__(self, name: str) -> FeatureFn:
        if name not in self.built:
            self.built[name] = EXTRACTORS.get(name).build(self.device, self.weights_dir)
        return self.built[name]


def score_features(run_dir: Path, metrics: list[SetMetric], reference: str | None,
                   extractors: Callable[[str], FeatureFn], seed: int = 0,
                   only_changed: bool = False) -> tuple[pd.DataFrame, dict[str, str]]:
    """Set-level rows for every (config, dataset) with stored features; skipped (metric on set -> reason).

    `only_changed` leaves out values already in sets.parquet for the same features count and reference
    content (a resumed run that restored nothing new recomputes nothing).
    """
    rows, skipped = [], {}
    done = _stored_values(run_dir) if only_changed else set()
    for metric in metrics:
        extractor = EXTRACTORS.get(metric.extractor)
        feats = store.load_features(run_dir, extractor.spec)
        if feats.empty:
            continue
        feats = feats[feats["sample"] == 0]
        knobs = store.knob_columns(feats)
        for (dataset, split), per_set in feats.groupby(["dataset", "split"]):
            try:
                ref = _reference(reference, dataset, split, per_set, extractor, _lazy(extractors, metric.extractor))
            except ReferenceMissingError as exc:
                skipped[f"{metric.name} on {dataset}:{split}"] = str(exc)
                continue
            for config_id, group in per_set[per_set["config_id"] != store.GROUND_TRUTH].groupby("config_id"):
                group = group.sort_values("image_id")
                if (config_id, dataset, split, metric.name, metric.spec, ref.name, len(group), ref.content_hash) in done:
                    continue
                values = np.stack(group["feature"].to_numpy()).astype(np.float64)
                if len(values) < 2:
                    skipped[f"{metric.name} of {config_id} on {dataset}:{split}"] = "needs at least 2 images"
                    continue
                result = score(metric, values, ref, seed=seed)
                first = group.iloc[0]
                rows.append({**{c: first[c] for c in [*CONFIG_COLUMNS, *knobs]}, "dataset": dataset, "split": split,
                             "metric": metric.name, "spec": metric.spec, "value": result.value, "n": result.n,
                             "ci_low": result.ci_low, "ci_high": result.ci_high, "reference": ref.name,
                             "reference_hash": ref.content_hash, "reference_n": ref.n})
    return pd.DataFrame(rows), skipped


def _reference(name: str | None, dataset: str, split: str, per_set: pd.DataFrame, extractor: FeatureExtractor,
               extract: FeatureFn) -> Reference:
    """The named reference (default: the dataset's); `per_set` holds the split's stored features (sample 0)."""
    name = name or default_reference(dataset)
    if name == GROUND_TRUTH_REFERENCE:
        return ground_truth_reference(per_set[per_set["config_id"] == store.GROUND_TRUTH], extractor, f"{dataset}:{split}")
    return get_reference(name, extractor, extract)


def ground_truth_reference(rows: pd.DataFrame, extractor: FeatureExtractor, where: str) -> Reference:
    """The stored ground-truth features of one dataset split as a reference; its hash covers their image ids
    and float32 bytes, in image-id order, so a value says exactly which ground truth it was compared with."""
    if len(rows) < 2:
        raise ReferenceMissingError(
            f"reference {GROUND_TRUTH_REFERENCE!r} needs the ground-truth {extractor.name} features of at least 2 images "
            f"of {where}; this run has {len(rows)} (LQ-only datasets have none; for a run made before they were "
            "stored, rerun its `run` command: it adds them without restoring again)")
    rows = rows.sort_values("image_id")
    digest = hashlib.sha256(extractor.spec.encode())
    feats = np.stack(rows["feature"].to_numpy()).astype(np.float32)
    for image_id, feature in zip(rows["image_id"], feats):
        digest.update(b"\0" + str(image_id).encode() + b"\0" + feature.tobytes())
    return Reference(GROUND_TRUTH_REFERENCE, extractor.spec, feats.astype(np.float64), digest.hexdigest(),
                     f"ground truth of {where} in this run ({len(rows)} images)")


def _stored_values(run_dir: Path) -> set[tuple]:
    path = run_dir / "sets.parquet"
    sets = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    if sets.empty or "reference" not in sets.columns:
        return set()
    sets = sets[sets["reference"].notna()]
    return set(sets[[*SET_KEY, "n", "reference_hash"]].itertuples(index=False, name=None))


def compare_sets(run_dir: Path, config_a: str, config_b: str, metric: SetMetric, dataset: str, split: str,
                 reference: str | None, extractors: Callable[[str], FeatureFn],
                 seed: int = 0) -> tuple[SetScore, Reference]:
    """metric(config_a) - metric(config_b) on the images both have (sample 0), with a paired bootstrap interval,
    and the reference it was computed against. ValueError when either has no features there."""
    extractor = EXTRACTORS.get(metric.extractor)
    feats = _sample0_rows(run_dir, extractor.spec, dataset, split)
    wide = feats.pivot(index="image_id", columns="config_id", values="feature")
    for config in (config_a, config_b):
        if config not in wide.columns:
            raise ValueError(f"no {extractor.name} features of configuration {config} on {dataset}:{split}")
    both = wide[[config_a, config_b]].dropna()
    if len(both) < 2:
        raise ValueError(f"configurations {config_a} and {config_b} have {extractor.name} features of {len(both)} "
                         f"common image(s) on {dataset}:{split}; a set-level difference needs at least 2")
    ref = _reference(reference, dataset, split, feats, extractor, _lazy(extractors, metric.extractor))
    return paired_difference(metric, np.stack(both[config_a].to_numpy()), np.stack(both[config_b].to_numpy()), ref,
                             seed=seed), ref


def sample0_features(run_dir: Path, extractor_spec: str, dataset: str, split: str) -> pd.DataFrame:
    """The stored sample-0 features of one set: one row per image_id, one column per config_id (arrays, or NaN
    where a configuration has no feature of that image); the images set-level values are computed from."""
    return _sample0_rows(run_dir, extractor_spec, dataset, split).pivot(index="image_id", columns="config_id",
                                                                         values="feature")


def _sample0_rows(run_dir: Path, extractor_spec: str, dataset: str, split: str) -> pd.DataFrame:
    feats = store.load_features(run_dir, extractor_spec)
    return feats[(feats["sample"] == 0) & (feats["dataset"] == dataset) & (feats["split"] == split)]


def _lazy(extractors: Callable[[str], FeatureFn], name: str) -> FeatureFn:
    return lambda images: extractors(name)(images)


def upsert_sets(run_dir: Path, rows: pd.DataFrame) -> None:
    """Put set-level rows into sets.parquet, replacing rows of the same (config, set, metric, spec, reference)."""
    if rows.empty:
        return
    path = run_dir / "sets.parquet"
    existing = pd.read_parquet(path) if path.exists() else pd.DataFrame()
    if not existing.empty and "reference" in existing.columns:
        old = existing.set_index(SET_KEY).index
        existing = existing[~old.isin(rows.set_index(SET_KEY).index)]
    merged = pd.concat([existing, rows], ignore_index=True) if not existing.empty else rows
    for knob in store.knob_columns(merged):  # keep integer knobs integer when frames of different knobs meet
        if knob in rows.columns and str(rows[knob].dtype) == "Int64":
            merged[knob] = merged[knob].astype("Int64")
    store.write_parquet(path, merged)


def fill_from_saved_images(run_dir: Path, extractor_name: str, extract: Callable[[], FeatureFn],
                           output_folder: Callable[[str, str, str], Path]) -> tuple[int, list[str]]:
    """Compute features missing for scored images from the PNGs that `--save-images` wrote.

    Returns (features added, the images still missing, as `config_id dataset:split image_id`). `extract` builds
    the extractor on first need; `output_folder(config_id, dataset, split)` is where the run saved the PNGs.
    """
    from lpmrf_bench.imageio import read_image

    spec = EXTRACTORS.get(extractor_name).spec
    scored = store.load(run_dir)
    if scored.empty:
        return 0, []
    knobs = store.knob_columns(scored)
    images = scored.drop_duplicates(store.FEATURE_KEY[:-1])
    have = store.load_features(run_dir, spec)
    done = set(have[store.FEATURE_KEY[:-1]].itertuples(index=False, name=None)) if not have.empty else set()
    rows, missing, fn = [], [], None
    for row in images.itertuples(index=False):
        key = (row.config_id, row.dataset, row.split, row.image_id, int(row.sample))
        if key in done:
            continue
        suffix = f"_s{row.sample}" if row.sample else ""
        path = output_folder(row.config_id, row.dataset, row.split) / f"{row.image_id}{suffix}.png"
        if not path.is_file():
            missing.append(f"{row.config_id} {row.dataset}:{row.split} {row.image_id}")
            continue
        fn = fn or extract()
        image, _ = read_image(path)
        feature = fn(torch.from_numpy(image).permute(2, 0, 1)[None].contiguous())[0].numpy().astype(np.float32)
        rows.append({**{c: getattr(row, c) for c in [*CONFIG_COLUMNS, *knobs, "sample", "dataset", "split", "image_id"]},
                     "extractor": spec, "feature": feature})
    store.append(run_dir, "features", rows)
    return len(rows), missing
