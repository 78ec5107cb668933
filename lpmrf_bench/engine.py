"""The run engine: dataset -> restorer -> 8-bit outputs -> per-image metrics -> store.

Loops method -> dataset -> batch -> knob configuration -> sample. The batch (and its `cache`) is shared by
every configuration of a method, so a sweep reuses knob-independent work. Only images whose rows are
not all stored yet are restored, so the same command resumes a killed run. A bad image never stops the
run: it becomes a row in `errors.parquet` and the run exits non-zero at the end, naming it.
"""
from __future__ import annotations

import logging
import resource
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm import tqdm

from lpmrf_bench import environment, store
from lpmrf_bench.data import Dataset, Sample
from lpmrf_bench.data.loading import group_by_shape, load_batches, to_tensor
from lpmrf_bench.distributed import Ranks, device_for, from_environment
from lpmrf_bench.imageio import write_png
from lpmrf_bench.metrics import MetricBatch
from lpmrf_bench.metrics.extractors import EXTRACTORS
from lpmrf_bench.plan import (MethodConfig, MethodPlan, MetricPlan, PlanError, plan_datasets, plan_methods,
                              plan_metrics, stable_hash)
from lpmrf_bench.restorers import LoadedRestorer, RestoreBatch, RestoreInputError, image_seed
from lpmrf_bench.run_dir import open_run_dir
from lpmrf_bench.runs_root import RUNS_ROOT
from lpmrf_bench.set_scoring import LazyExtractors, score_features, upsert_sets
from lpmrf_bench.summary import summarize, write_sets
from lpmrf_bench.weights import WeightsError

log = logging.getLogger(__name__)

FLUSH_SECONDS = 30.0


@dataclass
class RunOptions:
    methods: list[str]
    datasets: list[str]
    protocol: str = "pmrf"
    metrics: list[str] | None = None
    sets: dict[str, str] = field(default_factory=dict)
    sweeps: dict[str, str] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    samples: int = 1
    device: str | None = None
    batch_size: int = 8
    limit: int | None = None
    save_images: bool = False
    out: str | None = None
    data_root: str | None = None
    reference: str = "posterior-mean"  # the restoration reference-restoration metrics (IndRMSE) compare with
    set_reference: str | None = None  # reference set of fd/kd metrics (default: per dataset, references.py)
    weights_dir: str | None = None
    progress: bool = True
    argv: list[str] = field(default_factory=lambda: list(sys.argv))

    def identity(self) -> dict[str, Any]:
        """The options that decide results (not device or batch size): the default `--out` hashes them."""
        return {"methods": self.methods, "datasets": self.datasets, "protocol": self.protocol, "metrics": self.metrics,
                "sets": self.sets, "sweeps": self.sweeps, "weights": self.weights, "seed": self.seed,
                "samples": self.samples, "limit": self.limit, "reference": self.reference,
                **({"set_reference": self.set_reference} if self.set_reference else {})}

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else RUNS_ROOT / stable_hash(self.identity(), 12)


@dataclass
class RunResult:
    run_dir: Path
    errors: pd.DataFrame
    summary: pd.DataFrame
    skipped_metrics: dict[str, str]
    restored: int  # images restored by this invocation (0 when everything was already stored)
    is_main: bool = True  # False on ranks other than 0, which leave reporting to rank 0
    earlier_errors: int = 0  # unresolved failures in errors.parquet outside this command's work


def pick_device(name: str | None, ranks: Ranks = Ranks()) -> torch.device:
    if name is not None and name.startswith("cuda") and not torch.cuda.is_available():
        raise PlanError("--device cuda was asked for but torch sees no CUDA device")
    return device_for(name, ranks)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """[0,1] float -> uint8 exactly as `torchvision.utils.save_image`, which PMRF's inference.py uses to write the
    images its metrics read: x * 255 + 0.5, clamped to [0, 255], truncated (round half up)."""
    return (images.float() * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class _Rows:
    """Buffers rows and writes them as parts at most every FLUSH_SECONDS (and on `flush`)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.buffers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.last = time.monotonic()

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.buffers[table].append(row)
        if time.monotonic() - self.last > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        for table, rows in self.buffers.items():
            if rows:
                store.append(self.run_dir, table, rows)
        self.buffers.clear()
        self.last = time.monotonic()


class Runner:
    def __init__(self, options: RunOptions):
        self.o = options
        self.ranks = from_environment("cuda" if (options.device or "").startswith("cuda") else "cpu")
        self.device = pick_device(options.device, self.ranks)
        self.methods: list[MethodPlan] = plan_methods(options.methods, options.sets, options.sweeps, options.weights,
                                                      options.reference)
        self.datasets: list[Dataset] = plan_datasets(options.datasets, options.data_root)
        self.metric_plan: MetricPlan = plan_metrics(options.protocol, options.metrics, self.device, options.weights_dir,
                                                    options.reference, options.weights)
        reference = self.metric_plan.reference.label if self.metric_plan.reference else None
        self.run_dir, self.manifest = open_run_dir(options.out_dir(), options.protocol, options.seed, self.datasets,
                                                   options.argv, environment.describe(self.device), self.ranks,
                                                   reference)
        self.run_id = self.manifest["run_id"]
        self.rows = _Rows(self.run_dir)
        self.loaded: dict[str, LoadedRestorer] = {}
        self.invocation = f"{uuid.uuid4().hex[:12]}-r{self.ranks.rank}"
        self.restored = 0
        self.scope: set[tuple[str, str, str]] = set()  # (dataset, split, image_id) this command was asked about

    def _metrics_for(self, dataset: Dataset) -> list:
        """The run's metrics that apply to this dataset (ground truth present, images large enough)."""
        chosen = []
        for m in self.metric_plan.specs:
            if m.kind == "full-reference" and not dataset.paired:
                continue
            if m.min_size and dataset.resolution and dataset.resolution < m.min_size:
                self.metric_plan.skipped[f"{m.name} on {dataset.name}:{dataset.split}"] = (
                    f"defined for images of at least {m.min_size} px; these are {dataset.resolution} px")
                continue
            chosen.append(m)
        return chosen

    def _wanted(self, metrics: list) -> set[str]:
        """What an image needs stored: its metric names and `feature:<spec>` per extractor of the run."""
        return {m.name for m in metrics} | {_feature_marker(name) for name in self.metric_plan.extractors}

    def _stored(self, dataset: Dataset) -> dict[tuple[str, str, int], set[str]]:
        """(config_id, image_id, sample) -> metric names (and feature markers) already stored for this dataset."""
        frame = store.load(self.run_dir, columns=["config_id", "dataset", "split", "image_id", "sample", "metric"])
        feats = store.load_features(self.run_dir)[store.FEATURE_KEY]
        frame = pd.concat([frame, feats.assign(metric="feature:" + feats["extractor"]).drop(columns="extractor")])
        done: dict[tuple[str, str, int], set[str]] = defaultdict(set)
        if frame.empty:
            return done
        frame = frame[(frame["dataset"] == dataset.name) & (frame["split"] == dataset.split)]
        for cfg, image_id, sample, metric in frame[["config_id", "image_id", "sample", "metric"]].itertuples(index=False):
            done[(cfg, image_id, int(sample))].add(metric)
        return done

    def _record_images(self, dataset: Dataset, samples: list[Sample], known: set[str]) -> None:
        for s in samples:
            if s.image_id in known:
                continue
            known.add(s.image_id)
            self.rows.add("images", {
                "dataset": dataset.name, "split": dataset.split, "image_id": s.image_id,
                "lq_height": s.lq.shape[0], "lq_width": s.lq.shape[1],
                "gt_height": None if s.gt is None else s.gt.shape[0], "gt_width": None if s.gt is None else s.gt.shape[1],
                "conversions": "; ".join(s.conversions), "degradation": store_json(s.params),
            })

    def _error(self, config: MethodConfig | None, dataset: Dataset, image_id: str, sample: int, stage: str, reason: str) -> None:
        self.rows.add("errors", {"run_id": self.run_id, "config_id": config.config_id if config else "-",
                                 "method": config.method if config else "-", "dataset": dataset.name,
                                 "split": dataset.split, "image_id": image_id, "sample": sample, "stage": stage,
                                 "reason": reason})

    def run(self) -> RunResult:
        for dataset in self.datasets:
            self._ground_truth_features(dataset)
        for method in self.methods:
            for dataset in self.datasets:
                self._run_method_on(method, dataset)
        self.rows.flush()
        self.ranks.barrier()
        if not self.ranks.is_main:
            return RunResult(self.run_dir, pd.DataFrame(), pd.DataFrame(), self.metric_plan.skipped, self.restored,
                             is_main=False)
        store.consolidate(self.run_dir)
        write_sets(self.run_dir)
        if self.metric_plan.set_metrics:
            extractors = LazyExtractors(self.device, self.o.weights_dir, self.metric_plan.extractors)
            rows, skipped = score_features(self.run_dir, self.metric_plan.set_metrics, self.o.set_reference, extractors,
                                           seed=self.o.seed, only_changed=True)
            upsert_sets(self.run_dir, rows)
            self.metric_plan.skipped.update(skipped)
        config_ids = {c.config_id for m in self.methods for c in m.configs}
        errors = store.load_table(self.run_dir, "errors")
        mine = errors[[(c in config_ids or c == "-") and (d, s, i) in self.scope for c, d, s, i in
                       errors[["config_id", "dataset", "split", "image_id"]].itertuples(index=False)]] \
            if not errors.empty else errors
        return RunResult(self.run_dir, mine.reset_index(drop=True), summarize(self.run_dir, config_ids),
                         self.metric_plan.skipped, self.restored, earlier_errors=len(errors) - len(mine))

    def _ground_truth_features(self, dataset: Dataset) -> None:
        """Features of a paired dataset's ground truth, once per (dataset, split, image, extractor), for the
        `ground-truth` reference; stored and resumed like the outputs' features. Images that cannot be read
        are left to the methods' pass, which records them in errors.parquet."""
        if not dataset.paired or not self.metric_plan.extractors:
            return
        markers = {name: _feature_marker(name) for name in self.metric_plan.extractors}
        stored = self._stored(dataset)
        todo = [i for i in list(dataset.image_ids())[: self.o.limit]
                if not set(markers.values()) <= stored.get((store.GROUND_TRUTH, i, 0), set())]
        self.ranks.barrier()  # every rank has read the store before any rank writes to it
        for samples, _ in load_batches(dataset, self.ranks.shard(todo), self.o.batch_size):
            for same_size in group_by_shape([s for s in samples if s.gt is not None]):
                gt8 = to_tensor([s.gt for s in same_size], self.device)
                for name, fn in self.metric_plan.extractors.items():
                    feats = _one_by_one(fn, gt8)
                    for j, s in enumerate(same_size):
                        if markers[name] not in stored.get((store.GROUND_TRUTH, s.image_id, 0), set()):
                            self.rows.add("features", {
                                "run_id": self.run_id, "config_id": store.GROUND_TRUTH, "method": store.GROUND_TRUTH,
                                "weights": None, "sample": 0, "dataset": dataset.name, "split": dataset.split,
                                "image_id": s.image_id, "extractor": EXTRACTORS.get(name).spec, "feature": feats[j]})
        self.rows.flush()

    def _loaded(self, method: MethodPlan) -> LoadedRestorer:
        """Build a method's networks once, on first need (a fully stored method is never loaded)."""
        if method.name not in self.loaded:
            try:
                self.loaded[method.name] = method.spec.load(method.weights_arg, self.device)
            except ValueError as exc:  # a file the method cannot read (wrong keys, not a checkpoint): one message
                raise WeightsError(f"{method.name}: {exc}") from exc
        return self.loaded[method.name]

    def _run_method_on(self, method: MethodPlan, dataset: Dataset) -> None:
        metrics = self._metrics_for(dataset)
        names = self._wanted(metrics)
        samples = self.o.samples if method.spec.stochastic else 1
        ids = list(dataset.image_ids())[: self.o.limit]
        mismatches = getattr(dataset, "mismatches", {})
        self.scope.update((dataset.name, dataset.split, i) for i in [*ids, *mismatches])
        if self.ranks.is_main:
            for image_id, reason in mismatches.items():
                self._error(None, dataset, image_id, 0, "dataset", reason)
        stored = self._stored(dataset)
        todo = [i for i in ids if any(not names <= stored.get((c.config_id, i, k), set())
                                      for c in method.configs for k in range(samples))]
        self.ranks.barrier()  # every rank has read the store before any rank writes to it
        todo = self.ranks.shard(todo)
        if not todo:
            return
        loaded = self._loaded(method)
        if hasattr(loaded, "report_extra"):
            loaded.report_extra(ids)
        images = store.load_table(self.run_dir, "images")
        known = set() if images.empty else set(
            images.loc[(images["dataset"] == dataset.name) & (images["split"] == dataset.split), "image_id"])
        tally = _Tally()
        if self.device.type == "cuda":  # peak memory per method and dataset, not per process
            torch.cuda.reset_peak_memory_stats(self.device)
        bar = tqdm(total=len(todo), desc=f"{method.name} on {dataset.name}:{dataset.split}", unit="img",
                   disable=not self.o.progress, file=sys.stderr)
        for batch_samples, read_errors in load_batches(dataset, todo, self.o.batch_size):
            for image_id, reason in read_errors.items():
                for config in method.configs:
                    self._error(config, dataset, image_id, 0, "read", reason)
            self._record_images(dataset, batch_samples, known)
            for same_size in group_by_shape(batch_samples):
                group = self._prepare(method, dataset, same_size, metrics)
                for config in method.configs if group else ():
                    for k in range(samples):
                        self._restore_config(method, config, dataset, group, metrics, stored, k, tally)
            bar.update(len(batch_samples) + len(read_errors))
        bar.close()
        for config in method.configs:
            n = tally.count[config.config_id]
            if n:
                self.rows.add("perf", {
                    "run_id": self.run_id, "invocation": self.invocation, "config_id": config.config_id,
                    "method": config.method, "dataset": dataset.name, "split": dataset.split, "restorations": n,
                    "restore_images_per_s": n / max(tally.seconds[(config.config_id, "restore")], 1e-9),
                    "metric_images_per_s": n / max(sum(tally.per_metric(config.config_id).values()), 1e-9),
                    **{f"{store.PERF_METRIC_SECONDS}{name}": seconds
                       for name, seconds in tally.per_metric(config.config_id).items()},
                    "peak_memory_bytes": _peak_memory(self.device), "device": str(self.device),
                    "batch_size": self.o.batch_size})
        self.rows.flush()

    def _prepare(self, method: MethodPlan, dataset: Dataset, samples: list[Sample], metrics: list) -> _Group | None:
        """Same-size samples -> tensors on the device (and the reference restoration when a metric needs it)."""
        size = getattr(self._loaded(method), "input_size", method.spec.input_size)  # the loaded weights decide
        if size is not None:
            bad = [s for s in samples if s.lq.shape[:2] != (size, size)]
            for s in bad:
                for config in method.configs:
                    self._error(config, dataset, s.image_id, 0, "restore",
                                f"{method.spec.name} needs {size}x{size} inputs, got {s.lq.shape[1]}x{s.lq.shape[0]}")
            samples = [s for s in samples if s not in bad]
        if not samples:
            return None
        lq8 = to_tensor([s.lq for s in samples], self.device)
        gt8 = to_tensor([s.gt for s in samples], self.device) if samples[0].gt is not None else None
        batch = RestoreBatch(lq=lq8.float() / 255.0, image_ids=[s.image_id for s in samples], seeds=[],
                             gt=None if gt8 is None else gt8.float() / 255.0)
        ref8 = None
        reference = self.metric_plan.reference
        if reference is not None and any(m.kind == "reference-restoration" for m in metrics):
            ref_batch = RestoreBatch(lq=batch.lq, image_ids=batch.image_ids, gt=batch.gt,
                                     seeds=[image_seed(self.o.seed, dataset.name, i, 0) for i in batch.image_ids])
            with torch.inference_mode():
                ref8 = quantize(reference.restore(ref_batch, reference.knobs))
        return _Group(batch, lq8, gt8, ref8)

    def _restore_config(self, method: MethodPlan, config: MethodConfig, dataset: Dataset, group: _Group,
                        metrics: list, stored: dict, sample: int, tally: _Tally) -> None:
        names = self._wanted(metrics)
        keep = [i for i, image_id in enumerate(group.batch.image_ids)
                if not names <= stored.get((config.config_id, image_id, sample), set())]
        if not keep:
            return
        if len(keep) < len(group.batch.image_ids):
            group = group.subset(keep)
        ids = group.batch.image_ids
        batch = RestoreBatch(lq=group.batch.lq, image_ids=ids, gt=group.batch.gt, cache=group.batch.cache,
                             seeds=[image_seed(self.o.seed, dataset.name, i, sample) for i in ids])
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                out = self._loaded(method)(batch, config.knob_dict)
        except RestoreInputError as exc:
            for image_id, reason in exc.reasons.items():
                self._error(config, dataset, image_id, sample, "restore", reason)
            good = [i for i, image_id in enumerate(ids) if image_id not in exc.reasons]
            if good and len(good) < len(ids):
                self._restore_config(method, config, dataset, group.subset(good), metrics, stored, sample, tally)
            return
        self._sync()
        tally.seconds[(config.config_id, "restore")] += time.perf_counter() - start
        problem = _output_problem(out, group.lq8, group.gt8)
        if problem:
            for image_id in ids:
                self._error(config, dataset, image_id, sample, "restore", problem)
            return
        finite = torch.isfinite(out.flatten(1)).all(dim=1).cpu()
        out8 = quantize(out)
        scored = MetricBatch(out=out8, gt=group.gt8, lq=group.lq8, reference=group.ref8)
        values, features = {}, {}
        for m in metrics:  # timed one by one, so perf.parquet shows where the metric time goes
            start = time.perf_counter()
            values[m.name] = self.metric_plan.fns[m.spec](scored).detach().to("cpu", torch.float64).numpy()
            self._sync()
            tally.seconds[(config.config_id, f"metric:{m.name}")] += time.perf_counter() - start
        for name, fn in self.metric_plan.extractors.items():
            start = time.perf_counter()
            features[name] = _one_by_one(fn, out8)
            tally.seconds[(config.config_id, f"metric:features_{name}")] += time.perf_counter() - start
        for j, image_id in enumerate(ids):
            if not finite[j]:
                self._error(config, dataset, image_id, sample, "restore", "output contains NaN or Inf; no metric stored")
                continue
            have = stored.get((config.config_id, image_id, sample), set())
            base = {"run_id": self.run_id, "config_id": config.config_id, "method": config.method,
                    **{f"knob_{k}": v for k, v in config.knobs}, "weights": config.weights, "sample": sample,
                    "dataset": dataset.name, "split": dataset.split, "image_id": image_id}
            for m in metrics:
                if m.name not in have:
                    self.rows.add("metrics", {**base, "metric": m.name, "spec": m.spec, "value": float(values[m.name][j])})
            for name, feats in features.items():
                if _feature_marker(name) not in have:
                    self.rows.add("features", {**base, "extractor": EXTRACTORS.get(name).spec, "feature": feats[j]})
            if self.o.save_images:
                suffix = f"_s{sample}" if sample else ""
                folder = output_folder(self.run_dir, config.config_id, dataset.name, dataset.split)
                write_png(folder / f"{image_id}{suffix}.png", out8[j].permute(1, 2, 0).cpu().numpy())
        tally.count[config.config_id] += len(ids)
        self.restored += len(ids)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _output_problem(out: torch.Tensor, lq8: torch.Tensor, gt8: torch.Tensor | None) -> str | None:
    """Why a restorer's output batch cannot be scored, or None."""
    want_hw = tuple((gt8 if gt8 is not None else out).shape[-2:])
    if out.ndim != 4 or out.shape[0] != lq8.shape[0] or out.shape[1] != 3:
        return f"restorer returned shape {tuple(out.shape)}, expected [{lq8.shape[0]}, 3, H, W]"
    if tuple(out.shape[-2:]) != want_hw:
        return f"output is {out.shape[-1]}x{out.shape[-2]} but ground truth is {want_hw[1]}x{want_hw[0]}"
    return None


@dataclass
class _Group:
    """Same-size images of one batch: float inputs for the restorer, 8-bit tensors for the metrics."""

    batch: RestoreBatch
    lq8: torch.Tensor
    gt8: torch.Tensor | None
    ref8: torch.Tensor | None

    def subset(self, index: list[int]) -> _Group:
        """Some of the images; the cache starts empty because cached tensors are per full batch."""
        b = self.batch
        batch = RestoreBatch(lq=b.lq[index], image_ids=[b.image_ids[i] for i in index], seeds=[],
                             gt=None if b.gt is None else b.gt[index])
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return _Group(batch, self.lq8[index], pick(self.gt8), pick(self.ref8))


@dataclass
class _Tally:
    seconds: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))  # (config, stage)
    count: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def per_metric(self, config_id: str) -> dict[str, float]:
        """Seconds spent in each metric for one config."""
        return {stage.removeprefix("metric:"): s for (cid, stage), s in self.seconds.items()
                if cid == config_id and stage.startswith("metric:")}


def _one_by_one(extract, images: torch.Tensor):
    """Features image by image: float32 convolutions give batch-size-dependent last bits, and a resumed run
    (partial batches) or a rescore from saved PNGs must reproduce the stored vectors exactly."""
    return torch.cat([extract(images[j:j + 1]) for j in range(images.shape[0])]).numpy().astype("float32")


def _feature_marker(extractor_name: str) -> str:
    return f"feature:{EXTRACTORS.get(extractor_name).spec}"


def output_folder(run_dir: Path, config_id: str, dataset: str, split: str) -> Path:
    """Where `--save-images` writes a configuration's PNGs for one dataset split."""
    name = Path(dataset).name if "/" in dataset else dataset
    return run_dir / "outputs" / config_id / f"{name}_{split}".replace(":", "_")


def store_json(params: dict[str, Any]) -> str | None:
    import json

    return json.dumps(params, sort_keys=True, default=str) if params else None


def run(options: RunOptions) -> RunResult:
    return Runner(options).run()
