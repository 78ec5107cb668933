"""Where a run's numbers came from: versions, commit, hardware, seed, command lines, weights and their hashes."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lpmrf_bench import store
from lpmrf_bench.registry import UnavailableError, UnknownNameError
from lpmrf_bench.restorers import get_restorer


def weight_files(method: str, weights: str) -> str:
    """The files of a named weight set with their published sha256; a path-given set is its own hash."""
    if weights == "-" or weights.startswith("sha256:"):
        return weights
    try:
        files = get_restorer(method).weight_sets.get(weights)
    except (KeyError, UnavailableError, UnknownNameError, FileNotFoundError):
        files = None
    if not files:
        return weights
    return f"{weights}: " + "; ".join(f"{f.path} (sha256 {f.sha256 or 'not published'})" for f in files)


def provenance(run_dir: Path) -> list[tuple[str, str]]:
    """(field, value) pairs of one run, read from its manifest and its sets."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    env = manifest.get("environment", {})
    packages = ", ".join(f"{k} {v}" for k, v in sorted(env.get("packages", {}).items()) if v)
    hardware = ", ".join(f"{k} {v}" for k, v in sorted(env.get("hardware", {}).items()))
    datasets = ", ".join(f"{d['name']}:{d['split']}" for d in manifest.get("datasets", []))
    commands = " | ".join(" ".join(i["argv"]) + f" ({i['time']})" for i in manifest.get("invocations", []))
    sets = pd.read_parquet(run_dir / "sets.parquet") if (run_dir / "sets.parquet").exists() else pd.DataFrame()
    weights = []
    if not sets.empty:
        configs = sets.drop_duplicates("config_id")
        weights = [f"{label} = {weight_files(m, w)}"
                   for label, m, w in zip(store.config_labels(configs), configs["method"], configs["weights"])]
    return [("run directory", str(run_dir.resolve())), ("run id", manifest.get("run_id", "?")),
            ("created", manifest.get("created", "?")), ("protocol", manifest.get("protocol", "?")),
            ("seed", str(manifest.get("seed", "?"))), ("datasets", datasets),
            ("git commit", str(env.get("git_commit"))), ("python", f"{env.get('python')} on {env.get('platform')}"),
            ("hardware", hardware), ("packages", packages), ("weights", " | ".join(weights) or "-"),
            ("command lines", commands)]
