"""`lpmrf-bench run` and `lpmrf-bench restore`.

Every argument is checked before any weight lookup or network load; heavy modules load inside the commands.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from lpmrf_bench.cli.common import UsageProblem, fail_cleanly, parse_device
from lpmrf_bench.weights import CACHE_ENV, TRUST_ENV

POSITIVE = click.IntRange(min=1)


def trust_pickles(paths: tuple[str, ...]) -> None:
    """Let the full unpickler read exactly these files (`--trust-pickle`); the loaders read the environment."""
    if paths:
        listed = [p for p in os.environ.get(TRUST_ENV, "").split(os.pathsep) if p]
        os.environ[TRUST_ENV] = os.pathsep.join([*listed, *(str(Path(p).resolve()) for p in paths)])


TRUST_OPTION = click.option(
    "--trust-pickle", "trusted", multiple=True, type=click.Path(exists=True, dir_okay=False),
    help="A weight file you trust to be unpickled in full (it can run code); repeatable. Without it only "
         "tensors are read, except from files whose sha256 the catalog pins.")


@click.command("run")
@click.option("--methods", "methods", multiple=True, help="Comma-separated methods (repeatable); `outputs:DIR` scores a folder.")
@click.option("--datasets", "datasets", multiple=True, help="Comma-separated dataset specs: NAME, NAME:split or a folder.")
@click.option("--protocol", type=click.Choice(["pmrf", "pyiqa"]), default="pmrf", show_default=True)
@click.option("--metrics", "metrics", multiple=True, help="Metric names of the protocol (default: all that can run here).")
@click.option("--set", "sets", multiple=True, metavar="KNOB=V", help="Fix a knob for every method that has it.")
@click.option("--sweep", "sweeps", multiple=True, metavar="KNOB=V1,V2", help="Run every listed value of a knob.")
@click.option("--weights", "weights", multiple=True, metavar="METHOD=PATH", help="Weights for a method (file or folder).")
@TRUST_OPTION
@click.option("--reference", default="posterior-mean", show_default=True,
              help="Method whose output reference-restoration metrics (IndRMSE) compare with.")
@click.option("--set-reference", default=None, metavar="NAME",
              help="Reference set of fd/kd metrics (default: <dataset>:ref for synthetic faces, else ffhq-512; "
                   "`ground-truth`: the dataset's own GT).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Fixes every random draw of the run.")
@click.option("--samples", type=POSITIVE, default=1, show_default=True, help="Restorations per image (stochastic methods).")
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available).")
@click.option("--batch-size", type=POSITIVE, default=8, show_default=True)
@click.option("--limit", type=POSITIVE, default=None, help="Only the first N images of each dataset.")
@click.option("--save-images", is_flag=True, help="Also write the restored PNGs under outputs/.")
@click.option("--out", default=None, type=click.Path(), help="Run directory (default: runs/<hash of the configuration>).")
@click.option("--data-root", default=None, envvar="LPMRF_BENCH_DATA", type=click.Path(exists=True, file_okay=False),
              help="Where the benchmark sets live.")
@click.option("--weights-dir", default=None, envvar="LPMRF_BENCH_WEIGHTS", type=click.Path(file_okay=False),
              help="Weight cache folder.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--timings", is_flag=True, help="Also print where the time went: restore and each metric, per method.")
@fail_cleanly
def run_command(methods, datasets, protocol, metrics, sets, sweeps, weights, trusted, reference, set_reference, seed,
                samples, device, batch_size, limit, save_images, out, data_root, weights_dir, no_progress, timings) -> None:
    """Restore datasets with methods, score every image, store the rows and print the summary.

    With no --methods and no --datasets this is the embedded default: synthetic-faces:test x (identity +
    every method with embedded weights, on those weights) scored by PSNR, SSIM, fd_mobilenet and kd_mobilenet
    unless --metrics/--weights say otherwise; --methods alone runs those methods on it the same way. The same
    command resumes into the same directory.
    """
    import pandas as pd

    from lpmrf_bench.engine import RunOptions, run
    from lpmrf_bench.plan import (DEFAULT_DATASET, DEFAULT_METRICS, embedded_methods, parse_assignments,
                                  split_list, with_embedded_weights)

    device = parse_device(device)
    if weights_dir:  # restorers resolve through the environment; one cache for every model of the run
        os.environ[CACHE_ENV] = weights_dir
    trust_pickles(trusted)
    method_list, dataset_list = split_list(methods), split_list(datasets)
    weights = parse_assignments(list(weights), "--weights")
    if not method_list and dataset_list:
        raise click.UsageError("--datasets needs --methods (with neither, the run is the embedded default)")
    if not dataset_list:  # the embedded default, with all its methods or those named
        named, method_list, dataset_list = bool(method_list), method_list or embedded_methods(), [DEFAULT_DATASET]
        embedded = [m for m in with_embedded_weights(method_list) if m not in weights]
        if named:
            on = f" with the embedded weights of {', '.join(embedded)}" if embedded else ""
            click.echo(f"no --datasets: scoring {DEFAULT_DATASET} (the embedded default){on}", err=True)
        weights = {**weights, **dict.fromkeys(embedded, "embedded")}
        metrics = metrics or DEFAULT_METRICS
    options = RunOptions(
        methods=method_list, datasets=dataset_list, protocol=protocol, metrics=split_list(metrics) or None,
        sets=parse_assignments(list(sets), "--set"), sweeps=parse_assignments(list(sweeps), "--sweep"),
        weights=weights, reference=reference, set_reference=set_reference,
        seed=seed, samples=samples, device=device, batch_size=batch_size, limit=limit, save_images=save_images,
        out=out, data_root=data_root,
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
    if result.earlier_errors:
        click.echo(f"({result.earlier_errors} failure(s) recorded by earlier commands remain in "
                   f"{result.run_dir / 'errors.parquet'})")
    if not result.errors.empty:
        click.echo(f"{len(result.errors)} image(s) failed in this command (see {result.run_dir / 'errors.parquet'}):",
                   err=True)
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
@TRUST_OPTION
@click.option("--input", "input_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of LQ images; of a paired folder (lq/ and gt/) only lq/ is read.")
@click.option("--output", "output_dir", required=True, type=click.Path(file_okay=False),
              help="Where to write PNGs (outside the input folder).")
@click.option("--set", "sets", multiple=True, metavar="KNOB=V", help="Fix a knob of the method.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available).")
@click.option("--batch-size", type=POSITIVE, default=8, show_default=True, help="Images read per step.")
@click.option("--overwrite", is_flag=True, help="Replace PNGs that already exist in the output folder.")
@fail_cleanly
def restore_command(method, weights, trusted, input_dir, output_dir, sets, seed, device, batch_size, overwrite) -> None:
    """Restore a folder of images (inference only; no metrics), keeping relative names."""
    from lpmrf_bench.plan import parse_assignments, plan_methods

    device = parse_device(device)
    trust_pickles(trusted)
    source, target = Path(input_dir).resolve(), Path(output_dir).resolve()
    if target == source or target.is_relative_to(source) or source.is_relative_to(target):
        raise UsageProblem(f"--output {output_dir} overlaps --input {input_dir}; choose a folder outside it")
    plan = plan_methods([method], parse_assignments(list(sets), "--set"), {}, {method: weights} if weights else {})[0]
    _restore_folder(plan, source, target, seed, device, batch_size, overwrite)


def _restore_folder(plan, source: Path, target: Path, seed: int, device: str | None, batch_size: int,
                    overwrite: bool) -> None:
    import numpy as np
    import torch

    from lpmrf_bench.data import open_dataset
    from lpmrf_bench.data.loading import load_batches, to_tensor
    from lpmrf_bench.engine import pick_device, quantize
    from lpmrf_bench.imageio import write_png
    from lpmrf_bench.restorers import RestoreBatch, RestoreInputError, image_seed

    dataset = open_dataset(str(source))
    ids = list(dataset.image_ids())
    existing = [i for i in ids if (target / f"{i}.png").exists()]
    if existing and not overwrite:
        raise UsageProblem(f"{len(existing)} of the {len(ids)} outputs already exist in {target} (e.g. "
                           f"{existing[0]}.png); pass --overwrite to replace them")
    dev = pick_device(device)
    restorer = plan.spec.load(plan.weights_arg, dev)
    failures: list[str] = []
    converted: list[str] = []
    written = 0
    for samples, errors in load_batches(dataset, ids, batch_size):
        failures += [f"{k}: {v}" for k, v in errors.items()]
        for s in samples:  # one at a time: folders of inputs rarely share one size
            if s.conversions:
                converted.append(f"{s.image_id}: {', '.join(s.conversions)}")
            batch = RestoreBatch(lq=to_tensor([s.lq], dev).float() / 255.0, image_ids=[s.image_id],
                                 seeds=[image_seed(seed, dataset.name, s.image_id, 0)])
            try:
                with torch.inference_mode():
                    out = restorer(batch, plan.configs[0].knob_dict)
            except RestoreInputError as exc:
                failures += [f"{k}: {v}" for k, v in exc.reasons.items()]
                continue
            image = quantize(out)[0].permute(1, 2, 0).cpu().numpy()
            write_png(target / f"{s.image_id}.png", np.ascontiguousarray(image))
            written += 1
    read_from = getattr(dataset, "lq_dir", source)
    click.echo(f"wrote {written} of {len(ids)} image(s) from {read_from} to {target} ({plan.configs[0].label()})")
    if converted:  # the restorer saw 8-bit RGB; say what reading changed
        click.echo("\n".join([f"{len(converted)} converted on reading:", *(f"  {c}" for c in converted)]))
    if failures:
        click.echo("\n".join([f"{len(failures)} failed:", *(f"  {f}" for f in failures)]), err=True)
        sys.exit(1)
