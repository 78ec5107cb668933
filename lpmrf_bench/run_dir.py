"""The run directory's identity: what is fixed per directory, and who wrote to it.

Protocol, seed and dataset definitions are fixed when a directory is created; a later invocation that
differs in any of them is refused (mixing them would make the stored numbers incomparable). So is the
reference restoration of IndRMSE, once a command has used one. New methods and knob values may be added;
every command line that wrote to the directory is appended.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lpmrf_bench.data import Dataset
from lpmrf_bench.distributed import Ranks
from lpmrf_bench.store import write_json

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1


class RunDirConflict(ValueError):
    pass


def _dataset_definitions(datasets: list[Dataset]) -> list[dict[str, Any]]:
    return [{"name": d.name, "split": d.split, "paired": d.paired} for d in datasets]


def open_run_dir(path: Path, protocol: str, seed: int, datasets: list[Dataset], argv: list[str],
                 environment: dict[str, Any], ranks: Ranks = Ranks(),
                 reference: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Create or reopen a run directory, refusing a conflicting invocation; returns (path, manifest).

    Only rank 0 writes the manifest and sweeps temporary files left by a killed run (no rank writes
    before the barrier, so none of them is in flight); the other ranks read the manifest after it.
    """
    if ranks.is_main:
        manifest = _update_manifest(path, protocol, seed, datasets, argv, environment, reference)
    ranks.barrier()
    if not ranks.is_main:
        manifest = json.loads((path / MANIFEST).read_text())
    return path, manifest


def _remove_stale_temporaries(path: Path) -> None:
    for tmp in path.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _update_manifest(path: Path, protocol: str, seed: int, datasets: list[Dataset], argv: list[str],
                     environment: dict[str, Any], reference: str | None) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if path.exists() and not path.is_dir():
        raise RunDirConflict(f"--out {path} is a file, not a run directory")
    if path.is_dir() and not manifest_path.exists() and any(path.iterdir()):
        raise RunDirConflict(f"--out {path} is a folder with other files and no {MANIFEST}, so not a run directory; "
                             "choose a new or empty folder")
    path.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fixed = {"protocol": protocol, "seed": seed, "datasets": _dataset_definitions(datasets)}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        differences = [f"{key}: directory has {manifest.get(key)!r}, this command asks for {value!r}"
                       for key, value in fixed.items() if manifest.get(key) != value]
        if reference and manifest.get("reference") not in (None, reference):
            differences.append(f"reference: directory has {manifest['reference']!r}, this command asks for {reference!r}")
        if differences:
            raise RunDirConflict(
                f"{path} was created for a different run; " + "; ".join(differences)
                + ". Use another --out, or the directory's protocol, seed and datasets."
            )
    else:
        manifest = {"schema_version": SCHEMA_VERSION, "run_id": uuid.uuid4().hex[:16], "created": now, **fixed,
                    "invocations": []}
    manifest["reference"] = manifest.get("reference") or reference
    manifest["environment"] = environment
    manifest["invocations"].append({"time": now, "argv": argv, "environment": environment})
    write_json(manifest_path, manifest)
    return manifest
