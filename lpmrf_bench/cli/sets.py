"""`lpmrf-bench rescore` and `compare` (set-level values of a stored run, no restorer) and `lpmrf-bench ref-stats`."""
from __future__ import annotations

import time
from pathlib import Path

import click

from lpmrf_bench.cli.common import UsageProblem, fail_cleanly


@click.command("rescore")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--metrics", "metrics", multiple=True, help="Set-level metrics (default: every one with stored features).")
@click.option("--reference", default=None, metavar="NAME", help="Reference set (default: per dataset, as `run`); `ground-truth`: the run's own GT features.")
@click.option("--device", default=None, help="Only used to compute a missing reference or missing features.")
@click.option("--weights-dir", default=None, envvar="LPMRF_BENCH_WEIGHTS", help="Weight cache folder.")
@fail_cleanly
def rescore_command(run_dir: Path, metrics, reference, device, weights_dir) -> None:
    """Add set-level values (fd_mobilenet, kd_mobilenet, ...) to a run from its stored features.

    No restorer is loaded. Features missing for scored images are computed from the PNGs saved with
    --save-images; without them, the images are named and left out.
    """
    import pandas as pd

    from lpmrf_bench.engine import output_folder, pick_device
    from lpmrf_bench.metrics.setlevel import SET_METRICS
    from lpmrf_bench.plan import split_list
    from lpmrf_bench.set_scoring import LazyExtractors, fill_from_saved_images, score_features, upsert_sets

    manifest = _manifest(run_dir)
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
    rows, skipped = score_features(run_dir, chosen, reference, extractors, seed=manifest["seed"])
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
    from lpmrf_bench.metrics.references import GROUND_TRUTH_REFERENCE, Reference, embed_images, save, synthetic_size

    if synthetic_size(name) is not None:
        raise click.UsageError(f"{name!r} is the embedded synthetic reference, computed on first use; choose another name")
    if name == GROUND_TRUTH_REFERENCE:
        raise click.UsageError(f"{name!r} names a run's own stored ground truth; choose another name")
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


@click.command("compare")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--a", "config_a", required=True, metavar="CONFIG",
              help="A configuration: its config_id, its summary label (`pmrf steps=25`) or an unambiguous method name.")
@click.option("--b", "config_b", required=True, metavar="CONFIG", help="The configuration A is compared with.")
@click.option("--metric", default="fd_mobilenet", show_default=True, help="Set-level metric (fid, kid, fd_mobilenet, ...).")
@click.option("--dataset", default=None, metavar="NAME[:SPLIT]", help="Dataset of the run (needed when it has several).")
@click.option("--reference", default=None, metavar="NAME", help="Reference set (default: per dataset, as `run`); `ground-truth`: the run's own GT features.")
@click.option("--device", default=None, help="Only used to compute a missing embedded reference.")
@click.option("--weights-dir", default=None, envvar="LPMRF_BENCH_WEIGHTS", help="Weight cache folder.")
@fail_cleanly
def compare_command(run_dir: Path, config_a: str, config_b: str, metric: str, dataset: str | None,
                    reference: str | None, device, weights_dir) -> None:
    """metric(A) - metric(B) with a paired 95% bootstrap interval, from the stored features of a run.

    Only images both configurations have enter, and every resample draws the same image indices for both.
    No restorer is loaded.
    """
    from lpmrf_bench import store
    from lpmrf_bench.engine import pick_device
    from lpmrf_bench.metrics.references import ReferenceMissingError
    from lpmrf_bench.metrics.setlevel import BOOTSTRAP_RESAMPLES, SET_METRICS
    from lpmrf_bench.set_scoring import LazyExtractors, compare_sets

    manifest = _manifest(run_dir)
    if metric not in SET_METRICS:
        raise UsageProblem(f"--metric {metric}: not a set-level metric; known: {', '.join(SET_METRICS)}")
    configs = store.load(run_dir)
    if configs.empty:
        raise UsageProblem(f"{run_dir} has no scored images yet")
    try:
        a, b = store.find_config(configs, config_a), store.find_config(configs, config_b)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from exc
    name, split = _pick_dataset(configs[configs["config_id"].isin([a, b])], dataset)
    labels = dict(zip(configs["config_id"], store.config_labels(configs)))
    try:
        result, ref = compare_sets(run_dir, a, b, SET_METRICS[metric], name, split, reference,
                                   LazyExtractors(pick_device(device), weights_dir), seed=manifest["seed"])
    except (ValueError, ReferenceMissingError) as exc:
        raise UsageProblem(str(exc)) from exc
    spec = SET_METRICS[metric]
    click.echo(f"{metric}(A) - {metric}(B) on {name}:{split}, from the stored features (no restorer is loaded)")
    click.echo(f"  A: {labels[a]} ({a})\n  B: {labels[b]} ({b})")
    click.echo(f"  difference {result.value:.6g}, 95% interval [{result.ci_low:.6g}, {result.ci_high:.6g}], "
               f"n = {result.n} images both have (paired bootstrap: {BOOTSTRAP_RESAMPLES} resamples, seed {manifest['seed']})")
    click.echo(f"  reference {ref.name}: {ref.n} images, sha256 {ref.content_hash[:16]}")
    if result.ci_low > 0 or result.ci_high < 0:
        better = "A" if (result.value > 0) == spec.higher_is_better else "B"
        click.echo(f"  the interval excludes 0: {better} is better ({spec.direction} is better)")
    else:
        click.echo("  the interval includes 0: no difference shown at this n")


def _manifest(run_dir: Path) -> dict:
    import json

    if not (run_dir / "manifest.json").is_file():
        raise UsageProblem(f"{run_dir} is not a run directory (no manifest.json)")
    return json.loads((run_dir / "manifest.json").read_text())


def _pick_dataset(rows, wanted: str | None) -> tuple[str, str]:
    """(dataset, split) of the scored rows that `wanted` names (NAME, NAME:SPLIT or a folder); the only one if None."""
    present = sorted(set(zip(rows["dataset"], rows["split"])))
    if wanted is None and len(present) == 1:
        return present[0]
    matches = [(d, s) for d, s in present
               if wanted in (d, f"{d}:{s}") or (Path(wanted or "").exists() and Path(wanted).resolve() == Path(d))]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(f"{d}:{s}" for d, s in present) or "none"
    what = "several datasets: name one with --dataset" if wanted is None else f"--dataset {wanted} matches {len(matches)}"
    raise UsageProblem(f"{what}; the configurations' datasets: {listed}")
