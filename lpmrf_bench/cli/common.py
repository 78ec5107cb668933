"""How every command fails: one line naming the problem, no traceback unless `lpmrf-bench --debug`.

Exit status (DESIGN.md): 2 for a usage error or incomparable inputs (the command line asks for something
that cannot be), 1 for work that failed. `CleanGroup` applies this to every command under it, so a new
command gets it by being added to `main`; `fail_cleanly` does the same for a command invoked on its own.
The exception classes are looked up in `sys.modules` when an error happens, so this module imports neither
torch nor the modules that define them.
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

USAGE_EXIT, FAILED_EXIT = 2, 1
DEBUG_KEY = "lpmrf_bench.debug"

# "module:Class" of the errors whose message is already the whole story, with their exit status.
EXPECTED: dict[str, int] = {
    "lpmrf_bench.plan:PlanError": USAGE_EXIT,
    "lpmrf_bench.registry:UnknownNameError": USAGE_EXIT,
    "lpmrf_bench.data.base:DatasetError": USAGE_EXIT,
    "lpmrf_bench.run_dir:RunDirConflict": USAGE_EXIT,
    "lpmrf_bench.store:MixedSpecsError": USAGE_EXIT,
    "lpmrf_bench.registry:UnavailableError": FAILED_EXIT,
    "lpmrf_bench.weights:WeightsError": FAILED_EXIT,
    "lpmrf_bench.imageio:ImageReadError": FAILED_EXIT,
}


class UsageProblem(click.ClickException):
    """A value that cannot be used, found after parsing (exit 2, one line, without click's usage banner)."""

    exit_code = USAGE_EXIT


class FailedWork(click.ClickException):
    exit_code = FAILED_EXIT


def _expected_exit(exc: BaseException) -> int | None:
    for target, code in EXPECTED.items():
        module, _, name = target.partition(":")
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return code
    return None


def as_click_error(exc: Exception) -> click.ClickException:
    """The one-line error a user sees for `exc`; unexpected exceptions say how to get the traceback."""
    code = _expected_exit(exc)
    if code is not None:
        error: click.ClickException = UsageProblem(str(exc)) if code == USAGE_EXIT else FailedWork(str(exc))
        return error
    first = (str(exc).strip().splitlines() or [""])[0]
    return FailedWork(f"{type(exc).__name__}: {first} (an unexpected error; `lpmrf-bench --debug ...` "
                      "shows the traceback)")


def debugging() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().meta.get(DEBUG_KEY))


def _passes_through(exc: BaseException) -> bool:
    return isinstance(exc, (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit, KeyboardInterrupt))


def fail_cleanly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command callback: expected and unexpected errors become one line (see module doc)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except Exception as exc:
            if _passes_through(exc) or debugging():
                raise
            raise as_click_error(exc) from exc

    return wrapper


class CleanGroup(click.Group):
    """A group whose every subcommand (and nested group) fails cleanly."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _passes_through(exc) or ctx.find_root().meta.get(DEBUG_KEY):
                raise
            raise as_click_error(exc) from exc


def parse_device(name: str | None) -> str | None:
    """Check a `--device` value's form (cpu, cuda, cuda:N, mps) before anything heavy is imported."""
    if name is None:
        return None
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())) or name.endswith(":"):
        raise UsageProblem(f"--device {name!r} is not a device; use cpu, cuda, cuda:N or mps")
    return name


# The keys of lpmrf_bench.convergence.PROGRESS_AXES, spelled out so that the CLI starts without pandas.
progress_axis_option = click.option(
    "--x", "x", type=click.Choice(["step", "wall", "images"]), default="step", show_default=True,
    help="Training progress: steps, the training clock (validation excluded) or images seen.")


def run_dirs_or_newest(run_dirs: tuple[Path, ...]) -> tuple[Path, ...]:
    """The run folders a reading command was given, or else the one under runs/ written to last, said on stderr:
    so `lpmrf-bench run` then a bare `plot pd-tradeoff` or `report` reads the run just made."""
    from lpmrf_bench.runs_root import RUNS_ROOT, newest_evaluation_run

    if run_dirs:
        return run_dirs
    try:
        newest = newest_evaluation_run()
    except FileNotFoundError as exc:
        raise UsageProblem(str(exc)) from exc
    click.echo(f"no RUN_DIRS given: reading {newest}, the run folder under {RUNS_ROOT}/ written to last", err=True)
    return (newest,)
