"""Restorers by name: built-ins, the `lpmrf_bench.restorers` entry-point group, and `outputs:DIR`.

Outside packages (including our `lpmrf_baselines`) register a `RestorerSpec` under the entry-point
group; a plug-in that fails to import is listed as unavailable and breaks nothing else.
"""
from __future__ import annotations

from lpmrf_bench.registry import Registry
from lpmrf_bench.restorers.base import Knob, LoadedRestorer, RestoreBatch, RestoreInputError, RestorerSpec, image_seed

RESTORERS: Registry[RestorerSpec] = Registry("method", entry_point_group="lpmrf_bench.restorers")
for _name, _target in {
    "identity": "lpmrf_bench.restorers.identity:IDENTITY",
    "pmrf": "lpmrf_bench.restorers.builtin:PMRF",
    "posterior-mean": "lpmrf_bench.restorers.builtin:POSTERIOR_MEAN",
    "latent-pmrf": "lpmrf_bench.restorers.builtin:LATENT_PMRF",
    "vae-recon": "lpmrf_bench.restorers.builtin:VAE_RECON",
}.items():
    RESTORERS.add(_name, _target)


def get_restorer(name: str) -> RestorerSpec:
    """A registered method, or `outputs:DIR` / `outputs:NAME=DIR` (precomputed restorations)."""
    if name.startswith("outputs:"):
        from lpmrf_bench.restorers.outputs import outputs_spec

        return outputs_spec(name.removeprefix("outputs:"))
    return RESTORERS.get(name)


__all__ = ["RESTORERS", "Knob", "LoadedRestorer", "RestoreBatch", "RestoreInputError", "RestorerSpec",
           "get_restorer", "image_seed"]
