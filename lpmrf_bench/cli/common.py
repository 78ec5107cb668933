"""Turning expected failures into one clear message (no traceback) for every command."""
from __future__ import annotations

import functools

import click

from lpmrf_bench.data.base import DatasetError
from lpmrf_bench.plan import PlanError
from lpmrf_bench.registry import UnavailableError, UnknownNameError
from lpmrf_bench.run_dir import RunDirConflict
from lpmrf_bench.weights import WeightsError

EXPECTED = (PlanError, DatasetError, WeightsError, RunDirConflict, UnknownNameError, UnavailableError)


def fail_cleanly(command):
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except EXPECTED as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper
