"""`lpmrf-bench speedup`: how many times more training (steps, time or images) a baseline needs to match a
candidate."""
from __future__ import annotations

from pathlib import Path

import click

from lpmrf_bench.cli.common import UsageProblem, progress_axis_option


@click.command("speedup")
@click.argument("baseline", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("candidate", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--metric", default="fid", show_default=True, help="Validation metric logged by both runs.")
@click.option("--at-step", type=float, default=None, help="Candidate step to read (default: its first logged step).")
@click.option("--higher-is-better", is_flag=True, help="The metric improves upward (default: lower is better).")
@progress_axis_option
def speedup_command(baseline: Path, candidate: Path, metric: str, at_step: float | None, higher_is_better: bool,
                    x: str) -> None:
    """Read the candidate's value at a step, find (interpolating) when the baseline first reaches it, print the ratio
    of steps (or, with --x, of training time or images seen)."""
    import pandas as pd

    from lpmrf_bench import store
    from lpmrf_bench.convergence import load_curve, speedup

    try:
        base, cand = load_curve(baseline, metric), load_curve(candidate, metric)
        store.check_single_spec(pd.concat([base, cand]))
        result = speedup(base, cand, at_step, lower_is_better=not higher_is_better, axis=x)
    except store.MixedSpecsError as exc:
        raise UsageProblem(str(exc)) from exc
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.describe(candidate.name, baseline.name, metric))
