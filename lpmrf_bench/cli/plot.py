"""`lpmrf-bench plot pd-tradeoff`: the perception-distortion chart of a run directory."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lpmrf_bench.cli.common import UsageProblem

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("png", "pdf", "svg")


@click.group("plot")
def plot_group() -> None:
    """Charts drawn from a run directory."""


@plot_group.command("pd-tradeoff")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--x", "x", default="psnr", show_default=True, help="Distortion metric (horizontal axis).")
@click.option("--y", "y", default=None, help="Perception metric (default: the first of fid, kid, niqe, musiq, "
                                              "clipiqa, lpips in the run).")
@click.option("--dataset", default=None, help="Dataset of the run to draw (needed when it has several).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Image file ending in .png, .pdf or .svg (default RUN_DIR/pd-tradeoff.png).")
def pd_tradeoff_command(run_dir: Path, x: str, y: str | None, dataset: str | None, out: Path | None) -> None:
    """Each configuration at (distortion, perception) with 95% intervals; PD-knob sweeps joined as curves."""
    out = out or run_dir / "pd-tradeoff.png"
    if out.suffix.lower().lstrip(".") not in FORMATS:
        raise UsageProblem(f"--out {out}: the chart is written as {', '.join(FORMATS)}; end the name with one of them")
    sets_path = run_dir / "sets.parquet"
    if not sets_path.exists():
        raise click.ClickException(f"{run_dir} has no sets.parquet: run `lpmrf-bench run --out {run_dir}` first")
    import pandas as pd

    from lpmrf_bench.atomic import atomic_write
    from lpmrf_bench.plots import default_perception_metric, pd_tradeoff

    sets = pd.read_parquet(sets_path)
    try:
        y = y or default_perception_metric(sets)
        figure = pd_tradeoff(sets, x, y, dataset)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    atomic_write(out, lambda tmp: figure.savefig(tmp, format=out.suffix.lower().lstrip(".")))
    for line in not_drawable(sets, [x, y], dataset):
        click.echo(f"left out {line}", err=True)
    click.echo(f"wrote {out}")


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
