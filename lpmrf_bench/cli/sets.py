"""`lpmrf-bench rescore` (set-level values of a stored run, no restorer) and `lpmrf-bench ref-stats`."""
from __future__ import annotations

import time
from pathlib import Path

import click

from lpmrf_bench.cli.common import fail_cleanly


@click.command("rescore")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--metrics", "metrics", multiple=True, help="Set-level metrics (default: every one with stored features).")
@click.option("--reference", default=None, metavar="NAME", help="Reference set (default: per dataset, as `run`).")
@click.option("--device", default=None, help="Only used to compute a missing reference or missing features.")
@click.option("--weights-dir", default=None, envvar="LPMRF_BENCH_WEIGHTS", help="Weight cache folder.")
@fail_cleanly
def rescore_command(run_dir: Path, metrics, reference, device, weights_dir) -> None:
    """Add set-level values (fd_mobilenet, kd_mobilenet, ...) to a run from its stored features.

    No restorer is loaded. Features missing for scored images are computed from the PNGs saved with
    --save-images; without them, the images are named and left out.
    """
    import json

    import pandas as pd

    from lpmrf_bench.engine import output_folder, pick_device
    from lpmrf_bench.metrics.setlevel import SET_METRICS
    from lpmrf_bench.plan import split_list
    from lpmrf_bench.set_scoring import LazyExtractors, fill_from_saved_images, score_features, upsert_sets

    if not (run_dir / "manifest.json").is_file():
        raise click.UsageError(f"{run_dir} is not a run directory (no manifest.json)")
    names = split_list(metrics) or list(SET_METRICS)
    unknown = [n for n in names if n not in SET_METRICS]
    if unknown:
        raise click.UsageError(f"not set-level metric(s): {', '.join(unknown)}; known: {', '.join(SET_METRICS)}")
    click.echo(f"rescoring {run_dir} from its stored features (no restorer is loaded)")
    start = time.perf_counter()
    extractors = LazyExtractors(pick_device(device), weights_dir)
    chosen = [SET_METRICS[n] for n in names]
    for extractor in sorted({m.extractor for m in chosen}):
        added, missing = fill_from_saved_images(run_dir, extractor, lambda e=extractor: extractors(e),
                                                lambda c, d, s: output_folder(run_dir, c, d, s))
        if added:
            click.echo(f"computed {added} missing {extractor} feature(s) from the saved images")
        if missing:
            click.echo(f"{len(missing)} scored image(s) have no {extractor} features and no saved image "
                       f"(rerun with --save-images to make them computable), e.g. {missing[0]}", err=True)
    rows, skipped = score_features(run_dir, chosen, reference, extractors,
                                   seed=json.loads((run_dir / "manifest.json").read_text())["seed"])
    for what, reason in skipped.items():
        click.echo(f"skipped {what}: {reason}", err=True)
    if rows.empty:
        raise click.ClickException(f"no set-level value could be computed for {run_dir}")
    upsert_sets(run_dir, rows)
    shown = rows[["method", "dataset", "split", "metric", "value", "ci_low", "ci_high", "n", "reference"]]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        click.echo(shown.to_string(index=False))
    click.echo(f"wrote {len(rows)} row(s) to {run_dir / 'sets.parquet'} in {time.perf_counter() - start:.1f} s")


@click.command("ref-stats")
@click.argument("name")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--extractor", default="mobilenet", show_default=True, help="Registered feature extractor.")
@click.option("--device", default=None)
@click.option("--weights-dir", default=None, envvar="LPMRF_BENCH_WEIGHTS", help="Weight cache folder.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@fail_cleanly
def ref_stats_command(name: str, folder: Path, extractor: str, device, weights_dir, batch_size: int) -> None:
    """Compute and cache the reference features NAME of a folder of images (e.g. FFHQ at 512 px)."""
    from lpmrf_bench.engine import pick_device
    from lpmrf_bench.imageio import ImageReadError, list_images, read_image
    from lpmrf_bench.metrics.extractors import EXTRACTORS
    from lpmrf_bench.metrics.references import Reference, embed_images, save, synthetic_size

    if synthetic_size(name) is not None:
        raise click.UsageError(f"{name!r} is the embedded synthetic reference, computed on first use; choose another name")
    files = list_images(folder)
    if not files:
        raise click.UsageError(f"{folder} holds no images")
    spec = EXTRACTORS.get(extractor)
    extract = spec.build(pick_device(device), weights_dir)
    start = time.perf_counter()

    def images():
        for image_id, path in sorted(files.items()):
            try:
                yield image_id, read_image(path)[0]
            except ImageReadError as exc:
                raise click.ClickException(str(exc)) from exc

    feats, content = embed_images(images(), extract, batch_size)
    reference = Reference(name, spec.spec, feats, content, f"folder {folder.resolve()} ({len(files)} images)")
    path = save(reference, spec)
    click.echo(f"{name}: {reference.n} images, {extractor} features, content sha256 {content[:16]}, "
               f"{time.perf_counter() - start:.1f} s -> {path}")
