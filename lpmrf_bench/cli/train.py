"""`lpmrf-bench train RECIPE`: train a posterior mean, a VAE, or the PMRF / Latent-PMRF flow."""
from __future__ import annotations

import sys
from pathlib import Path

import click

RECIPE_NAMES = ("posterior-mean", "vae", "pmrf", "latent-pmrf")


@click.command("train")
@click.argument("recipe", type=click.Choice(RECIPE_NAMES))
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML file of settings (flat keys, as the run folder's config.toml).")
@click.option("--set", "sets", multiple=True, metavar="KEY=V", help="Override one setting (repeatable; lists comma-separated).")
@click.option("--data", default=None, help="HQ training images: a folder, or synthetic-faces[-N]:train (the default).")
@click.option("--out", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (default: runs/train-<recipe>-<hash of the settings>); rerunning it continues.")
@click.option("--resume", is_flag=True, help="Require a checkpoint in --out to continue from.")
@click.option("--data-root", default=None, envvar="LPMRF_BENCH_DATA", help="Where named data sets live.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def train_command(recipe: str, config_file: Path | None, sets: tuple[str, ...], data: str | None, out: Path | None,
                  resume: bool, data_root: str | None, debug: bool) -> None:
    """Train RECIPE with settings = recipe defaults < the run folder's config.toml < --config < --set.

    Checkpoints (model, EMA, optimiser, scheduler, RNG, data position) are written every checkpoint_every steps;
    rerunning the same --out continues bit for bit. Under torchrun every rank takes its share of the global batch.
    """
    from lpmrf_bench.train.run import TrainError, train

    try:
        result = train(recipe, config_file, list(sets), data, out, resume, data_root)
    except TrainError as exc:
        if debug:
            raise
        if exc.usage:
            raise click.UsageError(str(exc)) from None
        raise click.ClickException(str(exc)) from None
    if result is None:  # ranks other than 0 report nothing
        return
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    where = "started fresh" if result.resumed_from is None else f"resumed from step {result.resumed_from}"
    loss = "" if result.last_loss is None else f", last loss {result.last_loss:.5g}"
    click.echo(f"trained to step {result.progress.step} ({where}; {result.progress.wall_s:.1f} s of training{loss})")
    click.echo(f"run folder: {result.run_dir}")
    if result.export_dir is not None:
        click.echo(f"exported EMA weights: {result.export_dir}  (use: --weights {result.method}={result.export_dir})")
    sys.stdout.flush()
