"""Turning command-line choices into a run plan: method configurations, datasets and metrics.

A method configuration is (method, knob values, weights); its `config_id` hashes exactly those, so the
same configuration always lands on the same rows and a resumed run finds them.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lpmrf_bench.data import Dataset, open_dataset
from lpmrf_bench.metrics import METRICS, MetricSpec, protocol
from lpmrf_bench.metrics.base import MetricFn, unavailable_reason
from lpmrf_bench.metrics.extractors import EXTRACTORS, FeatureFn
from lpmrf_bench.metrics.setlevel import SET_METRICS, SetMetric
from lpmrf_bench.registry import UnavailableError
from lpmrf_bench.restorers import LoadedRestorer, RestorerSpec, get_restorer
from lpmrf_bench.weights import WeightsError, WeightsMissingError, resolve, sha256_of, status

log = logging.getLogger(__name__)

DEFAULT_DATASET = "synthetic-faces:test"
EMBEDDED_DEFAULT = ("posterior-mean", "pmrf", "latent-pmrf")  # restorers of the default run, besides identity
DEFAULT_METRICS = ("psnr", "ssim", "fd_mobilenet", "kd_mobilenet")  # of the embedded default run


class PlanError(ValueError):
    """The command line asks for something that cannot be run; the message says what and why."""


def stable_hash(obj: Any, length: int = 16) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


@dataclass(frozen=True)
class MethodConfig:
    method: str
    knobs: tuple[tuple[str, Any], ...]
    weights: str  # weight-set name, "sha256:<hex>" of a given file/folder, or "-" for none

    @property
    def config_id(self) -> str:
        return stable_hash({"method": self.method, "knobs": list(self.knobs), "weights": self.weights})

    @property
    def knob_dict(self) -> dict[str, Any]:
        return dict(self.knobs)

    def label(self) -> str:
        knobs = ",".join(f"{k}={v}" for k, v in self.knobs)
        return f"{self.method}[{knobs}]" if knobs else self.method


@dataclass
class MethodPlan:
    spec: RestorerSpec
    weights_arg: str | None  # what `spec.load` receives: a weight-set name or a path
    configs: list[MethodConfig] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Reference:
    """The restoration that reference-restoration metrics (IndRMSE) compare each output with."""

    name: str
    restore: LoadedRestorer
    knobs: dict[str, Any]
    weights: str  # as in the `weights` column: values against different references are not comparable

    @property
    def label(self) -> str:
        return f"{self.name} ({self.weights})"


@dataclass
class MetricPlan:
    specs: list[MetricSpec]
    skipped: dict[str, str]  # metric name -> reason
    fns: dict[str, MetricFn]  # spec -> the built per-image function
    reference: Reference | None = None
    set_metrics: list[SetMetric] = field(default_factory=list)  # from features against a reference set
    extractors: dict[str, FeatureFn] = field(default_factory=dict)  # extractor name -> built function


def weights_label(spec: RestorerSpec, weights_arg: str | None) -> str:
    """What the `weights` column says: the set's name, or the sha256 of a user-given file or folder."""
    if weights_arg is None:
        return spec.default_weights or "-"
    path = Path(weights_arg).expanduser()
    if spec.name.startswith("outputs:") or not path.exists():
        return weights_arg
    if path.is_file():
        return f"sha256:{sha256_of(path)[:16]}"
    files = sorted(p for p in path.rglob("*") if p.is_file())
    digest = stable_hash([(p.relative_to(path).as_posix(), sha256_of(p)) for p in files])
    return f"sha256:{digest}"


def parse_assignments(items: list[str], what: str) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise PlanError(f"{what} takes NAME=VALUE, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def split_list(values: tuple[str, ...] | list[str]) -> list[str]:
    """Comma-separated and repeated options -> one ordered list without duplicates."""
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            if item.strip() and item.strip() not in out:
                out.append(item.strip())
    return out


def embedded_methods() -> list[str]:
    """The default run's methods: `identity` and those of `EMBEDDED_DEFAULT` whose embedded weights are shipped.

    A missing file drops its method; a shipped file that does not match its pinned hash is an error."""
    names = ["identity"]
    for name in EMBEDDED_DEFAULT:
        files = get_restorer(name).weight_sets.get("embedded", ())
        try:
            for wf in files:
                resolve(wf, download=False)
        except WeightsMissingError:
            continue
        if files:
            names.append(name)
    return names


def with_embedded_weights(methods: list[str]) -> list[str]:
    """The methods that have a weight set `embedded`: the weights their synthetic-face domain is scored with.
    Unknown names are left to `plan_methods`, which reports them with every other argument."""
    found = []
    for name in methods:
        try:
            if "embedded" in get_restorer(name).weight_sets:
                found.append(name)
        except (KeyError, UnavailableError, FileNotFoundError):
            continue
    return found


def plan_methods(methods: list[str], sets: dict[str, str], sweeps: dict[str, str], weights: dict[str, str],
                 reference: str | None = None) -> list[MethodPlan]:
    """Check every argument (names, knobs and their values, --weights), then look the weights up: same order
    for every method, so a mistake is reported before any file is searched for or hashed."""
    plans: list[MethodPlan] = []
    for name in methods:
        try:
            spec = get_restorer(name)
        except (KeyError, UnavailableError, FileNotFoundError) as exc:
            raise PlanError(str(exc)) from exc
        plans.append(MethodPlan(spec, weights.get(name, spec.default_weights)))
    if reference is not None:
        try:
            get_restorer(reference)
        except (KeyError, UnavailableError, FileNotFoundError) as exc:
            raise PlanError(f"--reference: {exc}") from exc
    for key in [*sets, *sweeps]:
        if not any(key in {k.name for k in p.spec.knobs} for p in plans):
            raise PlanError(f"no selected method has a knob {key!r}")
    grids = {}
    for plan in plans:
        spec = plan.spec
        fixed = spec.default_knobs()
        try:
            fixed.update({k: spec.knob(k).parse(v) for k, v in sets.items() if k in fixed})
            grid = {k: [spec.knob(k).parse(v) for v in split_list([vals])] for k, vals in sweeps.items() if k in fixed}
        except ValueError as exc:
            raise PlanError(f"{spec.name}: {exc}") from exc
        grids[plan.name] = [{**fixed, **dict(zip(grid, combo))} for combo in itertools.product(*grid.values())]
    unused = set(weights) - {p.spec.name for p in plans} - set(methods) - {reference}
    if unused:
        raise PlanError(f"--weights names method(s) neither in --methods nor the reference: {', '.join(sorted(unused))}")
    for plan in plans:
        if plan.name in weights:
            _check_weights_arg(plan.spec, plan.weights_arg)
        elif plan.weights_arg is None and plan.spec.explicit_weights and not plan.spec.weight_sets:
            raise PlanError(f"{plan.name} runs only with --weights {plan.name}=PATH ({plan.spec.description})")
    missing = [problem for plan in plans for problem in _missing_weights(plan)]
    if missing:  # not a usage error: the arguments are fine, the files are not here (exit 1)
        raise WeightsMissingError("\n".join(missing))
    for plan in plans:
        label = weights_label(plan.spec, plan.weights_arg)
        plan.configs = [MethodConfig(plan.spec.name, tuple(sorted(knobs.items())), label) for knobs in grids[plan.name]]
    return plans


def _check_weights_arg(spec: RestorerSpec, arg: str | None) -> None:
    """`--weights M=X`: X must be one of M's weight sets, or an existing file/folder for a method that takes paths."""
    if arg is None or spec.name.startswith("outputs:"):
        return
    if not spec.weight_sets and not spec.explicit_weights:
        raise PlanError(f"--weights {spec.name}=...: method {spec.name!r} takes no weights")
    if arg in spec.weight_sets:
        return
    sets = f" (its weight sets: {', '.join(spec.weight_sets)})" if spec.weight_sets else ""
    if not spec.explicit_weights:
        raise PlanError(f"--weights {spec.name}={arg}: not a weight set of {spec.name}{sets}")
    if not Path(arg).expanduser().exists():
        raise PlanError(f"--weights {spec.name}={arg}: no such file or folder, and not a weight set of {spec.name}{sets}")


def _missing_weights(plan: MethodPlan) -> list[str]:
    """One message per weight file of the chosen named set that cannot be resolved (all of them, not the first)."""
    problems = []
    for wf in plan.spec.weight_sets.get(plan.weights_arg or "", ()):
        try:
            resolve(wf)
        except WeightsError as exc:
            problems.append(f"{plan.name}: {exc}")
    if not problems:
        return problems
    here = [name for name, files in plan.spec.weight_sets.items()
            if name != plan.weights_arg and all(status(wf) != "missing" for wf in files)]
    if here:  # e.g. the published pmrf is absent offline, the embedded one ships in the package
        problems.append(f"{plan.name}: its weight set {here[0]!r} is on this machine: --weights "
                        f"{plan.name}={here[0]} in `run`, --weights {here[0]} in `restore`")
    return problems


def plan_datasets(specs: list[str], data_root: str | None) -> list[Dataset]:
    from lpmrf_bench.data import DatasetError

    datasets = []
    for spec in specs:
        try:
            datasets.append(open_dataset(spec, data_root))
        except (DatasetError, KeyError, UnavailableError) as exc:
            raise PlanError(str(exc)) from exc
    return datasets


def plan_reference(name: str, weights: dict[str, str], device: torch.device) -> Reference:
    spec = get_restorer(name)
    weights_arg = weights.get(name, spec.default_weights)
    return Reference(name, spec.load(weights_arg, device), spec.default_knobs(), weights_label(spec, weights_arg))


def plan_metrics(protocol_name: str, names: list[str] | None, device: torch.device, weights_dir: str | None,
                 reference: str = "posterior-mean", weights: dict[str, str] | None = None) -> MetricPlan:
    """Build every selected metric once; unavailable defaults are skipped with the reason, named ones are errors."""
    table = protocol(protocol_name)
    wanted = names or [*table, *SET_METRICS]
    unknown = [n for n in wanted if n not in table and n not in SET_METRICS]
    if unknown:
        raise PlanError(f"protocol {protocol_name!r} has no metric(s) {', '.join(unknown)}; "
                        f"it has: {', '.join([*table, *SET_METRICS])}")
    plan = MetricPlan([], {}, {})
    for name in [n for n in wanted if n in SET_METRICS]:
        metric = SET_METRICS[name]
        try:
            if metric.extractor not in plan.extractors:
                plan.extractors[metric.extractor] = EXTRACTORS.get(metric.extractor).build(device, weights_dir)
        except (UnavailableError, WeightsError, ImportError) as exc:
            if names:
                raise _cannot_run(name, exc) from exc
            plan.skipped[name] = str(exc).splitlines()[0]
            continue
        plan.set_metrics.append(metric)
    for name in [n for n in wanted if n not in SET_METRICS]:
        try:
            spec = METRICS.get(table[name])
            reason = unavailable_reason(spec)
            if reason:
                raise UnavailableError(reason)
            if spec.kind == "reference-restoration" and plan.reference is None:
                plan.reference = plan_reference(reference, weights or {}, device)
            plan.fns[spec.spec] = spec.build(device, weights_dir)
        except (UnavailableError, WeightsError, ImportError, KeyError) as exc:
            if names:
                raise _cannot_run(name, exc) from exc
            plan.skipped[name] = str(exc)  # all of it: a missing file's message says where to get it and put it
            continue
        plan.specs.append(spec)
    return plan


def _cannot_run(name: str, exc: Exception) -> Exception:
    """A metric named with --metrics that cannot run: missing weights are failed work (exit 1, as for a method's
    weights), anything else (a missing package, an unknown name) a usage error (exit 2)."""
    message = f"metric {name!r} cannot run: {exc}"
    return WeightsError(message) if isinstance(exc, WeightsError) else PlanError(message)
