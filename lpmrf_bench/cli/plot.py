"""`lpmrf-bench plot pd-tradeoff` and `plot convergence`: charts drawn from run directories."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lpmrf_bench.cli.common import UsageProblem, progress_axis_option, run_dirs_or_newest
from lpmrf_bench.pd_axes import DISTORTION_DEFAULT, PERCEPTION_HELP

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("png", "svg", "pdf")
RunDir = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group("plot")
def plot_group() -> None:
    """Charts drawn from run directories."""


def _save(figure, out: Path) -> None:
    from lpmrf_bench.atomic import atomic_write

    atomic_write(out, lambda tmp: figure.savefig(tmp, format=out.suffix.lstrip(".").lower()))
    click.echo(f"wrote {out}")


def _check_format(out: Path | None) -> None:
    if out is not None and out.suffix.lstrip(".").lower() not in FORMATS:
        raise click.UsageError(f"--out must end in .png, .svg or .pdf, got {out.name}")


@plot_group.command("pd-tradeoff")
@click.argument("run_dirs", nargs=-1, type=RunDir)
@click.option("--x", "x", default=DISTORTION_DEFAULT, show_default=True, help="Distortion metric (horizontal axis).")
@click.option("--y", "y", default=None, help=f"Perception metric (default: {PERCEPTION_HELP}).")
@click.option("--dataset", default=None, help="Dataset to draw (needed when there are several), or `all`: a panel each.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Image file: .png, .svg or .pdf (default: FIRST_RUN_DIR/pd-tradeoff.png).")
def pd_tradeoff_command(run_dirs: tuple[Path, ...], x: str, y: str | None, dataset: str | None, out: Path | None) -> None:
    """Every configuration of RUN_DIRS at (distortion, perception) with 95% intervals; PD-knob sweeps as curves.

    The Pareto frontier over all points is marked; the better corner is the top right for any metric pair.
    Without RUN_DIRS: the run folder under runs/ that a command wrote to last.
    """
    from lpmrf_bench.plots import default_perception_metric, pd_tradeoff
    from lpmrf_bench.store import MixedSpecsError, load_sets

    _check_format(out)
    run_dirs = run_dirs_or_newest(run_dirs)
    try:
        sets = load_sets(run_dirs)
        y = y or default_perception_metric(sets)
        figure = pd_tradeoff(sets, x, y, dataset)
    except MixedSpecsError as exc:
        raise UsageProblem(str(exc)) from exc
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    _save(figure, out or run_dirs[0] / "pd-tradeoff.png")
    for line in not_drawable(sets, [x, y], None if dataset == "all" else dataset):
        click.echo(f"left out {line}", err=True)


@plot_group.command("convergence")
@click.argument("run_dirs", nargs=-1, required=True, type=RunDir)
@click.option("--metric", default="fid", show_default=True, help="Validation metric logged by the training runs.")
@progress_axis_option
@click.option("--at-step", type=float, default=None,
              help="Step of each later run where the match-reading arrow starts (default: its first logged step).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Image file: .png, .svg or .pdf (default: FIRST_RUN_DIR/convergence.png).")
def convergence_command(run_dirs: tuple[Path, ...], metric: str, x: str, at_step: float | None, out: Path | None) -> None:
    """METRIC against training progress for training runs (their convergence.parquet).

    The first run is the baseline: an arrow from each other run's value at --at-step to where the baseline first
    reaches it reads the ratio of steps, training time or images on the --x axis (as `lpmrf-bench speedup --x`).
    """
    from lpmrf_bench.convergence import load_curve
    from lpmrf_bench.convergence_plot import convergence_chart
    from lpmrf_bench.store import MixedSpecsError

    _check_format(out)
    names = [d.resolve().name for d in run_dirs]
    if len(set(names)) < len(names):
        raise click.UsageError("the run directories' names must differ (they name the curves)")
    try:
        figure, readings = convergence_chart({n: load_curve(d, metric) for n, d in zip(names, run_dirs)}, metric, x,
                                             at_step)
    except MixedSpecsError as exc:
        raise UsageProblem(str(exc)) from exc
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for name, reading in readings:
        click.echo(reading.describe(name, names[0], metric))
    _save(figure, out or run_dirs[0] / "convergence.png")


def not_drawable(sets: pd.DataFrame, metrics: list[str], dataset: str | None) -> list[str]:
    """Configurations the chart cannot place, and why: an infinite value (PSNR of outputs identical to the
    ground truth) has no position on an axis, so matplotlib drops the point without a word."""
    import numpy as np
    import pandas as pd

    from lpmrf_bench.store import knob_columns

    rows = sets[sets["metric"].isin(metrics) & np.isinf(sets["value"].to_numpy(dtype=float))]
    if dataset is not None:
        rows = rows[rows["dataset"] == dataset]
    knobs = knob_columns(sets)
    lines = []
    for row in rows.itertuples(index=False):
        setting = ", ".join(f"{k.removeprefix('knob_')}={getattr(row, k)}" for k in knobs if pd.notna(getattr(row, k)))
        lines.append(f"{row.method}{f' ({setting})' if setting else ''}: {row.metric} = {row.value:g} cannot be placed "
                     "on the axes")
    return lines
