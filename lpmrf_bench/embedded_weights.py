"""The `embedded` weight set: small 64 px networks trained on synthetic faces, shipped inside the package.

`lpmrf_bench/embedded/<method>/` holds each method's export of `lpmrf-bench train` (scripts/train_embedded.sh)
and its training run's `convergence.parquet`; `manifest.json` pins the sha256 of every weight file (written by
scripts/embed_weights.py). The files are registered in the weights catalog, so `weights list|verify` show and
check them, and `embedded_folder` checks them again before a restorer reads the folder.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from lpmrf_bench.weights import WeightFile, WeightsMissingError, register, resolve

METHODS = ("posterior-mean", "pmrf", "latent-pmrf", "vae-recon")
LICENCE = "Apache-2.0 (trained by lpmrf-bench on its synthetic faces)"


def package_folder() -> Path:
    return Path(str(resources.files("lpmrf_bench") / "embedded"))


def _manifest() -> dict[str, dict[str, str]]:
    path = package_folder() / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _files(method: str, pinned: dict[str, str]) -> tuple[WeightFile, ...]:
    return tuple(register(WeightFile(f"embedded/{method}/{rel}", f"embedded:{method}/{rel}", sha256, LICENCE,
                                     f"{method}, 64 px synthetic faces"))
                 for rel, sha256 in sorted(pinned.items()))


EMBEDDED: dict[str, tuple[WeightFile, ...]] = {m: _files(m, files) for m, files in _manifest().items()}


def weight_sets(method: str) -> dict[str, tuple[WeightFile, ...]]:
    """`{"embedded": files}` when the package ships the method's embedded weights, else `{}`."""
    return {"embedded": EMBEDDED[method]} if method in EMBEDDED else {}


def embedded_folder(method: str) -> Path:
    """The folder of `method`'s embedded weights, after every file in it was checked against its pinned sha256."""
    if method not in EMBEDDED:
        raise WeightsMissingError(f"{method} has no embedded weights in this installation of lpmrf-bench")
    for wf in EMBEDDED[method]:
        resolve(wf)
    return package_folder() / method


def local_weights(method: str, weights: str | None) -> str | None:
    """A restorer's weights argument with the set name `embedded` replaced by its checked package folder."""
    return str(embedded_folder(method)) if weights == "embedded" else weights
