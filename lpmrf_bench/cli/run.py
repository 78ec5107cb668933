"""`lpmrf-bench run` and `lpmrf-bench restore`."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch

from lpmrf_bench.cli.common import fail_cleanly
from lpmrf_bench.engine import RunOptions, pick_device, quantize, run
from lpmrf_bench.plan import DEFAULT_DATASET, embedded_methods, parse_assignments, split_list
from lpmrf_bench.weights import CACHE_ENV


@click.command("run")
@click.option("--methods", "methods", multiple=True, help="Comma-separated methods (repeatable); `outputs:DIR` scores a folder.")
@click.option("--datasets", "datasets", multiple=True, help="Comma-separated dataset specs: NAME, NAME:split or a folder.")
@click.option("--protocol", type=click.Choice(["pmrf", "pyiqa"]), default="pmrf", show_default=True)
@click.option("--metrics", "metrics", multiple=True, help="Metric names of the protocol (default: all that can run here).")
@click.option("--set", "sets", multiple=True, metavar="KNOB=V", help="Fix a knob for every method that has it.")
@click.option("--sweep", "sweeps", multiple=True, metavar="KNOB=V1,V2", help="Run every listed value of a knob.")
@click.option("--weights", "weights", multiple=True, metavar="METHOD=PATH", help="Weights for a method (file or folder).")
@click.option("--reference", default="posterior-mean", show_default=True,
              help="Method whose output reference-restoration metrics (IndRMSE) compare with.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fixes every random draw of the run.")
@click.option("--samples", type=int, default=1, show_default=True, help="Restorations per image (stochastic methods).")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available).")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N images of each dataset.")
@click.option("--save-images", is_flag=True, help="Also write the restored PNGs under outputs/.")
@click.option("--out", default=None, help="Run directory (default: runs/<hash of the configuration>).")
@click.option("--data-root", default=None, envvar="LPMRF_BENCH_DATA", help="Where the benchmark sets live.")
@click.option("--weights-dir", default=None, envvar="LPMRF_BENCH_WEIGHTS", help="Weight cache folder.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--timings", is_flag=True, help="Also print where the time went: restore and each metric, per method.")
@fail_cleanly
def run_command(methods, datasets, protocol, metrics, sets, sweeps, weights, reference, seed, samples, device, batch_size, limit,
                save_images, out, data_root, weights_dir, no_progress, timings) -> None:
    """Restore datasets with methods, score every image, store the rows and print the summary.

    With no --methods and no --datasets this is the embedded default: synthetic-faces:test x (identity +
    every method with embedded weights). The same command resumes into the same directory.
    """
    if weights_dir:  # restorers resolve through the environment; one cache for every model of the run
        os.environ[CACHE_ENV] = weights_dir
    method_list, dataset_list = split_list(methods), split_list(datasets)
    if not method_list and not dataset_list:
        method_list, dataset_list = embedded_methods(), [DEFAULT_DATASET]
    if not method_list or not dataset_list:
        raise click.UsageError("give both --methods and --datasets, or neither (the embedded default)")
    if samples < 1 or batch_size < 1:
        raise click.UsageError("--samples and --batch-size must be at least 1")
    options = RunOptions(
        methods=method_list, datasets=dataset_list, protocol=protocol, metrics=split_list(metrics) or None,
        sets=parse_assignments(list(sets), "--set"), sweeps=parse_assignments(list(sweeps), "--sweep"),
        weights=parse_assignments(list(weights), "--weights"), reference=reference, seed=seed, samples=samples, device=device,
        batch_size=batch_size, limit=limit, save_images=save_images, out=out, data_root=data_root,
        weights_dir=weights_dir, progress=not no_progress, argv=["lpmrf-bench", *sys.argv[1:]],
    )
    result = run(options)
    if not result.is_main:
        return
    for name, reason in result.skipped_metrics.items():
        click.echo(f"skipped metric {name}: {reason}", err=True)
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 40):
        click.echo(result.summary.to_string(index=False) if not result.summary.empty else "no metric rows")
    if timings:
        _echo_timings(result.run_dir)
    click.echo(f"run directory: {result.run_dir}  ({result.restored} images restored by this command)")
    if not result.errors.empty:
        click.echo(f"{len(result.errors)} image(s) failed (see {result.run_dir / 'errors.parquet'}):", err=True)
        for row in result.errors.head(20).itertuples():
            click.echo(f"  {row.dataset}:{row.image_id} [{row.method}, {row.stage}] {row.reason}", err=True)
        sys.exit(1)


def _echo_timings(run_dir: Path) -> None:
    from lpmrf_bench.summary import timings

    table = timings(run_dir)
    if table.empty:
        click.echo("no timings recorded")
        return
    table = table.assign(seconds=table["seconds"].map("{:.3f}".format), share=table["share"].map("{:.0%}".format),
                         images_per_s=table["images_per_s"].map("{:.4g}".format))
    click.echo("time per stage (all commands that wrote to this run):")
    click.echo(table.rename(columns={"images_per_s": "images/s"}).to_string(index=False))


@click.command("restore")
@click.option("--method", required=True, help="A registered method.")
@click.option("--weights", default=None, help="Weight-set name or path (default: the method's default set).")
@click.option("--input", "input_dir", required=True, type=click.Path(exists=True, file_okay=False), help="Folder of LQ images.")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False), help="Where to write PNGs.")
@click.option("--set", "sets", multiple=True, metavar="KNOB=V")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None)
@click.option("--batch-size", type=int, default=8, show_default=True)
@fail_cleanly
def restore_command(method, weights, input_dir, output_dir, sets, seed, device, batch_size) -> None:
    """Restore a folder of images (inference only; no metrics), keeping relative names."""
    from lpmrf_bench.data.folder import FolderDataset
    from lpmrf_bench.data.loading import load_batches, to_tensor
    from lpmrf_bench.imageio import write_png
    from lpmrf_bench.plan import plan_methods
    from lpmrf_bench.restorers import RestoreBatch, RestoreInputError, image_seed

    plan = plan_methods([method], parse_assignments(list(sets), "--set"), {}, {method: weights} if weights else {})[0]
    dev = pick_device(device)
    restorer = plan.spec.load(plan.weights_arg, dev)
    dataset = FolderDataset(input_dir, name=str(Path(input_dir).resolve()))
    failures: list[str] = []
    for samples, errors in load_batches(dataset, list(dataset.image_ids()), batch_size):
        failures += [f"{k}: {v}" for k, v in errors.items()]
        for s in samples:  # one at a time: folders of inputs rarely share one size
            batch = RestoreBatch(lq=to_tensor([s.lq], dev).float() / 255.0, image_ids=[s.image_id],
                                 seeds=[image_seed(seed, dataset.name, s.image_id, 0)])
            try:
                with torch.inference_mode():
                    out = restorer(batch, plan.configs[0].knob_dict)
            except RestoreInputError as exc:
                failures += [f"{k}: {v}" for k, v in exc.reasons.items()]
                continue
            image = quantize(out)[0].permute(1, 2, 0).cpu().numpy()
            write_png(Path(output_dir) / f"{s.image_id}.png", np.ascontiguousarray(image))
    if failures:
        click.echo("\n".join(["failed:", *failures]), err=True)
        sys.exit(1)
