"""`lpmrf-bench degrade` (make seeded LQ/GT pairs from HQ faces) and `lpmrf-bench data preview`."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from typing import TYPE_CHECKING

import click

from lpmrf_bench.cli.common import UsageProblem, fail_cleanly

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

PARAMS_FILE = "params.parquet"
PIPELINE_NAMES = ("difface", "gfpgan")  # the keys of data.degrade.PIPELINES, listed here so --help imports no numpy
FLUSH_SECONDS = 10.0  # params.parquet is rewritten this often: a killed run redoes at most that much work


def _previous_rows(dst: Path, pipeline: str, seed: int, size: int | None) -> dict[str, dict]:
    """Rows of an earlier run into `dst`, refusing to mix pipelines, seeds or sizes in one output folder."""
    import pandas as pd

    path = dst / PARAMS_FILE
    if not path.exists():
        return {}
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {path} ({exc}); delete it to degrade every image again") from exc
    if not {"image_id", "pipeline", "seed", "size"} <= set(frame.columns):
        raise UsageProblem(f"{path} was not written by `degrade` (no image_id/pipeline/seed/size columns); "
                                   "choose another --dst")
    written = sorted({(str(p), int(s)) for p, s in zip(frame["pipeline"], frame["seed"])})
    if written and written != [(pipeline, seed)]:
        options = ", ".join(f"--pipeline {p} --seed {s}" for p, s in written)
        raise UsageProblem(f"{dst} was written with {options}; rerun with the same options to resume, "
                                   "or choose another --dst")
    sizes = sorted({int(s) for s in frame["size"]})
    if size is not None and sizes and sizes != [size]:
        raise UsageProblem(f"{dst} holds images of {', '.join(map(str, sizes))} px, not --size {size}; "
                                   "rerun with the same options to resume, or choose another --dst")
    return {row["image_id"]: row for row in frame.to_dict("records")}


def _load_hq(path: Path, size: int | None) -> tuple[np.ndarray, list[str]]:
    import numpy as np
    from PIL import Image

    from lpmrf_bench.imageio import ImageReadError, read_image

    hq, conversions = read_image(path)
    h, w = hq.shape[:2]
    if h != w:
        raise ImageReadError(path, f"is {w}x{h}, not square; the face pipelines expect aligned square crops")
    if size is not None and w != size:
        hq = np.asarray(Image.fromarray(hq).resize((size, size), Image.BICUBIC))
        conversions.append(f"resized {w} -> {size} (bicubic)")
    return hq, conversions


@click.command("degrade")
@click.option("--pipeline", type=click.Choice(PIPELINE_NAMES), default="difface", show_default=True,
              help="difface: PMRF/DifFace training degradation; gfpgan: GFPGAN's (CelebA-Test style).")
@click.option("--src", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of HQ aligned square face crops (searched recursively).")
@click.option("--dst", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: gt/, lq/ and params.parquet (a paired dataset spec).")
@click.option("--seed", type=int, default=0, show_default=True, help="Each image's draws derive from (seed, image_id).")
@click.option("--size", type=click.IntRange(min=8), default=None,
              help="Resize sources to N x N (bicubic) and scale the pipeline's ranges from 512 to N.")
@fail_cleanly
def degrade_command(pipeline: str, src: Path, dst: Path, seed: int, size: int | None) -> None:
    """Make LQ/GT pairs from HQ faces with a published degradation, seeded and resumable."""
    import pandas as pd
    from tqdm import tqdm

    from lpmrf_bench.data.degrade import PIPELINES, degrade
    from lpmrf_bench.imageio import ImageReadError, list_images, write_png
    from lpmrf_bench.store import write_parquet

    if dst.resolve().is_relative_to(src.resolve()):
        raise UsageProblem(f"--dst {dst} is inside --src {src}; its outputs would be read as sources next time")
    config = PIPELINES[pipeline] if size is None else PIPELINES[pipeline].scaled_to(size)
    try:
        sources = list_images(src)
    except ImageReadError as exc:
        raise click.ClickException(str(exc)) from exc
    if not sources:
        raise UsageProblem(f"no images (png/jpg/bmp/webp/tif) found in {src}")
    rows = _previous_rows(dst, pipeline, seed, size)
    done = {i for i in rows if (dst / "lq" / f"{i}.png").is_file() and (dst / "gt" / f"{i}.png").is_file()}
    rows = {i: rows[i] for i in done}
    todo = [i for i in sources if i not in done]
    if done:
        click.echo(f"{len(done)} of {len(sources)} images already degraded in {dst}; doing the other {len(todo)}")
    failed: dict[str, str] = {}
    warned_size = False
    flushed = time.monotonic()
    for image_id in tqdm(todo, desc=f"degrade ({pipeline})", unit="img"):
        try:
            hq, conversions = _load_hq(sources[image_id], size)
            lq, gt, params = degrade(hq, config, seed, image_id)
        except (ImageReadError, ValueError) as exc:
            failed[image_id] = str(exc)
            continue
        if hq.shape[0] != config.size and not warned_size:
            warned_size = True
            log.warning("%s is %dx%d but the %s ranges are for %d px; pass --size %d to scale them",
                        sources[image_id], hq.shape[1], hq.shape[0], pipeline, config.size, hq.shape[0])
        write_png(dst / "gt" / f"{image_id}.png", gt)
        write_png(dst / "lq" / f"{image_id}.png", lq)
        rows[image_id] = {"image_id": image_id, "seed": seed, **params.to_dict(), "conversions": "; ".join(conversions)}
        if time.monotonic() - flushed > FLUSH_SECONDS:
            write_parquet(dst / PARAMS_FILE, pd.DataFrame([rows[i] for i in sorted(rows)]))
            flushed = time.monotonic()
    if rows:
        write_parquet(dst / PARAMS_FILE, pd.DataFrame([rows[i] for i in sorted(rows)]))
    click.echo(f"{len(rows)} LQ/GT pairs in {dst} (pipeline {pipeline}, seed {seed})")
    if failed:
        lines = "\n".join(f"  {sources[i]}: {reason}" for i, reason in sorted(failed.items()))
        raise click.ClickException(f"{len(failed)} source image(s) could not be degraded and were skipped:\n{lines}")


@click.group("data")
def data_group() -> None:
    """Inspect datasets."""


@data_group.command("preview")
@click.argument("spec")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG to write.")
@click.option("--n", "count", type=click.IntRange(min=1), default=16, show_default=True,
              help="Images to show, spread evenly over the set.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where named sets live (default: $LPMRF_BENCH_DATA).")
@click.option("--cell", type=click.IntRange(min=16), default=192, show_default=True, help="Side of each image on the sheet.")
@click.option("--captions/--no-captions", default=False, show_default=True, help="Write each image_id under its tile.")
@fail_cleanly
def preview_command(spec: str, out: Path, count: int, data_root: Path | None, cell: int, captions: bool) -> None:
    """Write a contact sheet of a dataset spec: LQ beside GT where paired."""
    import numpy as np

    from lpmrf_bench.data import open_dataset
    from lpmrf_bench.data.preview import contact_sheet
    from lpmrf_bench.imageio import ImageReadError, write_png

    if out.suffix.lower() != ".png":
        raise UsageProblem(f"--out {out} must end in .png (the sheet is written as PNG)")
    try:
        dataset = open_dataset(spec, data_root)
    except ImageReadError as exc:
        raise click.ClickException(str(exc)) from exc
    ids = list(dataset.image_ids())
    picks = sorted({ids[int(i)] for i in np.linspace(0, len(ids) - 1, min(count, len(ids)))})
    samples = []
    for image_id in picks:
        try:
            samples.append(dataset.load(image_id))
        except ImageReadError as exc:
            click.echo(f"skipped {image_id}: {exc}", err=True)
    if not samples:
        raise click.ClickException(f"none of the {len(picks)} images picked from {spec} could be read")
    sheet = contact_sheet(samples, cell=cell, captions=captions)
    write_png(out, sheet)
    click.echo(f"wrote {out} ({sheet.shape[1]}x{sheet.shape[0]}, {len(samples)} images of {dataset.name})")
