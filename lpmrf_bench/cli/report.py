"""`lpmrf-bench report`: tables, charts, image grids and provenance of runs; with --baseline, the CI verdict."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from lpmrf_bench.cli.common import run_dirs_or_newest
from lpmrf_bench.pd_axes import DISTORTION_DEFAULT, PERCEPTION_HELP

RunDir = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("report")
@click.argument("run_dirs", nargs=-1, type=RunDir)
@click.option("--baseline", type=RunDir, default=None,
              help="Run directory to judge the runs against (e.g. reports/baseline); exit 1 on a regression.")
@click.option("--tolerance", "tolerances", multiple=True, metavar="METRIC=V",
              help="Smallest change that counts, in the metric's unit (defaults: README 'Reports and CI').")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="report.html (one self-contained file) or report.md (images in <name>_files/ beside it).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the regression verdict as JSON (needs --baseline).")
@click.option("--x", "pd_x", default=DISTORTION_DEFAULT, show_default=True, help="Distortion metric of the PD chart.")
@click.option("--y", "pd_y", default=None, help=f"Perception metric of the PD chart (default: {PERCEPTION_HELP}).")
@click.option("--grid-metric", default="psnr", show_default=True,
              help="Metric that ranks images for the best / median / worst grid.")
@click.option("--data-root", default=None, envvar="LPMRF_BENCH_DATA", help="Where the benchmark sets live (image grids).")
@click.option("--device", default="cpu", show_default=True, help="Device for re-running restorers for the image grid.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the paired bootstrap.")
def report_command(run_dirs: tuple[Path, ...], baseline: Path | None, tolerances: tuple[str, ...], out: Path | None,
                   json_out: Path | None, pd_x: str, pd_y: str | None, grid_metric: str, data_root: str | None, device: str, seed: int) -> None:
    """Report on RUN_DIRS (evaluation runs, and training runs with a convergence.parquet); without RUN_DIRS, on the
    run folder under runs/ that a command wrote to last.

    Without --out, prints the set-level tables (and the verdict with --baseline). Exit status: 0 done, 1 a
    regression against the baseline, 2 incomparable inputs (each difference named).
    """
    from lpmrf_bench import regression
    from lpmrf_bench.store import MixedSpecsError

    if json_out and not baseline:
        raise click.UsageError("--json writes the regression verdict: give --baseline too")
    if out and out.suffix.lower() not in (".html", ".md"):
        raise click.UsageError(f"--out must end in .html or .md, got {out.name}")
    run_dirs = run_dirs_or_newest(run_dirs)
    evaluation_dirs = [d for d in run_dirs if (d / "sets.parquet").exists()]
    training_dirs = [d for d in run_dirs if (d / "convergence.parquet").exists()]
    unknown = [str(d) for d in run_dirs if d not in evaluation_dirs and d not in training_dirs]
    if unknown:
        raise click.UsageError(f"not a run directory (no sets.parquet or convergence.parquet): {', '.join(unknown)}")
    try:
        tolerance_map = regression.parse_tolerances(tolerances)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    verdict = None
    try:
        if baseline is not None:
            if not evaluation_dirs:
                raise click.UsageError("--baseline needs at least one evaluation run (with sets.parquet)")
            verdict = regression.compare(regression.load_evaluation([baseline]),
                                         regression.load_evaluation(evaluation_dirs), tolerance_map, seed=seed)
    except (regression.IncomparableError, FileNotFoundError) as exc:
        differences = getattr(exc, "differences", [str(exc)])
        click.echo(f"cannot compare with the baseline {baseline}:", err=True)
        for difference in differences:
            click.echo(f"  {difference}", err=True)
        if json_out is not None:
            from lpmrf_bench.store import write_json

            write_json(json_out, {"exit_status": 2, "incomparable": differences})
            click.echo(f"wrote {json_out}")
        sys.exit(2)
    try:
        if out is not None:
            from lpmrf_bench.report import ReportOptions, write_report

            written = write_report(ReportOptions(evaluation_dirs, training_dirs, out, verdict, pd_x, pd_y, grid_metric,
                                                 data_root, device))
            click.echo(f"wrote {', '.join(str(p) for p in written)}")
        elif evaluation_dirs:
            from lpmrf_bench.report.tables import text_tables

            click.echo(text_tables(evaluation_dirs))
    except MixedSpecsError as exc:  # runs whose values were computed under different specs
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if json_out is not None:
        from lpmrf_bench.store import write_json

        write_json(json_out, verdict.to_json())
        click.echo(f"wrote {json_out}")
    if verdict is not None:
        changed = verdict.of("regression") + verdict.of("improvement")
        not_per_image = [c for c in verdict.comparisons if c.basis != regression.PAIRED_IMAGES and c not in changed]
        for comparison in changed + not_per_image:  # the latter say what their interval rests on
            click.echo(comparison.describe())
        click.echo(f"against {baseline}: {regression.summary_line(verdict)}")
        sys.exit(verdict.exit_status)

