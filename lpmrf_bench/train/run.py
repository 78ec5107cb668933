"""Setting up a training run folder: resolve the settings, refuse conflicting reruns, train, report."""
from __future__ import annotations

import tomllib
from pathlib import Path

from lpmrf_bench.atomic import atomic_write
from lpmrf_bench.data.base import DatasetError
from lpmrf_bench.models.checkpoint import CheckpointError
from lpmrf_bench.registry import UnknownNameError
from lpmrf_bench.runs_root import RUNS_ROOT
from lpmrf_bench.train import config as settings
from lpmrf_bench.train.loop import Trainer, TrainResult, run_id
from lpmrf_bench.train.state import complete_checkpoints
from lpmrf_bench.weights import WeightsError

CONFIG_NAME = "config.toml"


class TrainError(RuntimeError):
    """An expected failure, reported as one line; `usage` ones exit with status 2."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


def resolve_settings(recipe: str, run_dir: Path | None, config_file: Path | None, sets: list[str],
                     data: str | None) -> settings.TrainConfig:
    """Recipe defaults < the run folder's config.toml < --config < --set (--data is `data`)."""
    cls = settings.RECIPE_CONFIGS[recipe]
    assignments = settings.parse_sets(sets)
    if data is not None:
        assignments["data"] = data
    base = cls()
    stored = run_dir / CONFIG_NAME if run_dir is not None else None
    if stored is not None and stored.exists():
        base = settings.apply(base, tomllib.loads(stored.read_text()), str(stored))
    return settings.resolve(base, config_file, assignments)


def train(recipe: str, config_file: Path | None, sets: list[str], data: str | None, out: Path | None,
          resume: bool, data_root: str | None = None) -> TrainResult | None:
    """Run `recipe` into `out` (see `lpmrf-bench train --help`); None on ranks other than 0."""
    try:
        cfg = resolve_settings(recipe, out, config_file, sets, data)
        run_dir = out or RUNS_ROOT / run_id(recipe, cfg)
        if out is None:
            cfg = resolve_settings(recipe, run_dir, config_file, sets, data)
        stored = run_dir / CONFIG_NAME
        if stored.exists():
            changed = settings.changed_keys(tomllib.loads(stored.read_text()), cfg)
            if changed:
                raise TrainError(f"{run_dir} was trained with other values of {', '.join(changed)}; continue with "
                                 f"the same settings or train into a new --out", usage=True)
        if resume and not complete_checkpoints(run_dir):
            raise TrainError(f"--resume: {run_dir} has no complete checkpoint to continue from", usage=True)
        trainer = Trainer(recipe, cfg, run_dir, data_root)
        if trainer.ranks.is_main:
            header = f"lpmrf-bench train {recipe}: resolved settings (recipe defaults < config file < --set)"
            atomic_write(stored, lambda tmp: tmp.write_text(settings.toml_text(cfg, header)))
        result = trainer.train()
    except settings.ConfigError as exc:
        raise TrainError(str(exc), usage=True) from exc
    except (DatasetError, UnknownNameError) as exc:
        raise TrainError(str(exc).splitlines()[0], usage=True) from exc
    except (WeightsError, CheckpointError, ValueError) as exc:
        raise TrainError(str(exc).splitlines()[0]) from exc
    return result if trainer.ranks.is_main else None
