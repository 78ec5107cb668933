"""Image grids for reports: per dataset, the best, median and worst images by a metric, LQ / each method / GT.

Images are ranked by the metric's mean over the configurations shown (direction from the registry). A
configuration's image comes from its `--save-images` output when there is one; otherwise its restorer is
re-run on those few images only, with the run's seed, and the re-run image is scored again with the grid metric:
when that does not reproduce the stored value (the code or weights changed since the run) the note says so. A
configuration that cannot be re-run here (weights given by path, missing weights) is a grey cell and a note why.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from lpmrf_bench import store  # noqa: E402
from lpmrf_bench.data import is_path_spec, open_dataset  # noqa: E402
from lpmrf_bench.data.base import Dataset, DatasetError  # noqa: E402
from lpmrf_bench.engine import output_folder, quantize  # noqa: E402
from lpmrf_bench.imageio import ImageReadError, read_image  # noqa: E402
from lpmrf_bench.metrics import MetricBatch, find_metric  # noqa: E402
from lpmrf_bench.registry import UnavailableError, UnknownNameError  # noqa: E402
from lpmrf_bench.restorers import RestoreBatch, RestoreInputError, get_restorer, image_seed  # noqa: E402
from lpmrf_bench.weights import WeightsError  # noqa: E402

RANKS = ("best", "median", "worst")


@dataclass(frozen=True)
class Grid:
    dataset: str  # name:split
    png: bytes
    notes: list[str]


@dataclass(frozen=True)
class Config:
    run_dir: Path
    config_id: str
    label: str
    method: str
    knobs: dict[str, Any]
    weights: str
    seed: int


def pick_images(values: pd.Series, higher_is_better: bool) -> dict[str, str]:
    """rank name -> image_id of the best, median and worst image (fewer when the set is smaller)."""
    order = values.sort_values(ascending=not higher_is_better, kind="stable").index.tolist()
    chosen = {"best": order[0], "median": order[(len(order) - 1) // 2], "worst": order[-1]}
    seen, out = set(), {}
    for rank, image_id in chosen.items():
        if image_id not in seen:
            seen.add(image_id)
            out[rank] = image_id
    return out


def _configs(metrics: pd.DataFrame, labels: dict[tuple[str, str], str]) -> list[Config]:
    out = []
    for row in metrics.drop_duplicates(["run_dir", "config_id"]).itertuples(index=False):
        row = row._asdict()
        seed = json.loads((Path(row["run_dir"]) / "manifest.json").read_text()).get("seed", 0)
        knobs = {k.removeprefix("knob_"): (v.item() if hasattr(v, "item") else v)
                 for k, v in row.items() if k.startswith("knob_") and pd.notna(v)}
        out.append(Config(Path(row["run_dir"]), row["config_id"], labels[(Path(row["run_dir"]).resolve().name,
                          row["config_id"])], row["method"], knobs, row["weights"], int(seed)))
    return sorted(out, key=lambda c: c.label)


def _restore(config: Config, dataset: Dataset, image_ids: list[str], device: torch.device) -> dict[str, np.ndarray]:
    """Re-run a configuration on a few images (sample 0, the run's seed); raises with the reason it cannot."""
    if config.weights.startswith("sha256:"):
        raise WeightsError(f"its weights were given by path ({config.weights}); rerun it with --save-images")
    restorer = get_restorer(config.method).load(None if config.weights == "-" else config.weights, device)
    out = {}
    for image_id in image_ids:
        sample = dataset.load(image_id)
        lq = torch.from_numpy(sample.lq).permute(2, 0, 1)[None].to(device).float() / 255.0
        gt = None if sample.gt is None else torch.from_numpy(sample.gt).permute(2, 0, 1)[None].to(device).float() / 255.0
        batch = RestoreBatch(lq=lq, image_ids=[image_id], seeds=[image_seed(config.seed, dataset.name, image_id, 0)], gt=gt)
        with torch.inference_mode():
            out[image_id] = quantize(restorer(batch, config.knobs))[0].permute(1, 2, 0).cpu().numpy()
    return out


def _as_batch(image: np.ndarray | None) -> torch.Tensor | None:
    return None if image is None else torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]


def rescore(spec: str, images: dict[str, np.ndarray], dataset: Dataset, stored: dict[str, float]) -> list[str]:
    """Image ids whose re-run output does not reproduce the stored value of the metric (with both values)."""
    metric = find_metric(spec)
    score = metric.build(torch.device("cpu"), None)
    differ = []
    for image_id, image in images.items():
        sample = dataset.load(image_id)
        now = float(score(MetricBatch(out=_as_batch(image), gt=_as_batch(sample.gt), lq=_as_batch(sample.lq)))[0])
        was = stored.get(image_id, float("nan"))
        if not np.isclose(now, was, rtol=1e-6, atol=1e-9, equal_nan=True):
            differ.append(f"{image_id} ({was:.4g} stored, {now:.4g} now)")
    return differ


def _outputs(config: Config, dataset: Dataset, image_ids: list[str], device: torch.device, notes: list[str],
             spec: str, stored: dict[str, float]) -> dict[str, np.ndarray]:
    folder = output_folder(config.run_dir, config.config_id, dataset.name, dataset.split)
    try:
        saved = {i: read_image(folder / f"{i}.png")[0] for i in image_ids}
        notes.append(f"{config.label}: saved outputs ({folder})")
        return saved
    except ImageReadError:
        pass
    try:
        images = _restore(config, dataset, image_ids, device)
    except (WeightsError, UnavailableError, UnknownNameError, RestoreInputError, FileNotFoundError, ValueError) as exc:
        notes.append(f"{config.label}: not shown ({exc})")
        return {}
    try:
        differ = rescore(spec, images, dataset, stored)
    except (WeightsError, UnavailableError, ValueError) as exc:
        differ = [f"not checked: {exc}"]
    check = (f"; it does NOT reproduce the stored {spec.split('/')[0]} on {', '.join(differ)}: the code or weights "
             "changed since the run" if differ else f"; it reproduces the stored {spec.split('/')[0]} values")
    notes.append(f"{config.label}: re-run on these {len(image_ids)} images (outputs were not saved){check}")
    return images


def _figure(columns: list[str], rows: list[tuple[str, str, list[np.ndarray | None], list[str]]]) -> bytes:
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(1.9 * len(columns), 2.15 * len(rows)), dpi=110,
                             squeeze=False)
    for r, (rank, image_id, images, captions) in enumerate(rows):
        for c, (image, caption) in enumerate(zip(images, captions)):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if image is None:
                ax.set_facecolor("0.85")
                ax.text(0.5, 0.5, "not available", ha="center", va="center", fontsize=7, transform=ax.transAxes)
            else:
                ax.imshow(image, interpolation="nearest")
            ax.set_xlabel(caption, fontsize=7)
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
        axes[r, 0].set_ylabel(f"{rank}\n{image_id}", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def image_grids(run_dirs: list[Path], labels: dict[tuple[str, str], str], metric: str, data_root: str | None,
                device: str) -> list[Grid]:
    """One grid per dataset of the runs; `labels` maps (run name, config_id) to the tables' configuration label."""
    frames = [frame for frame in (store.load(d).assign(run_dir=str(d)) for d in run_dirs) if not frame.empty]
    if not frames:  # only set-level values (e.g. a baseline reduced to sets.parquet): nothing to rank images by
        return []
    metrics = pd.concat(frames, ignore_index=True)
    grids = []
    for (name, split), rows in metrics.groupby(["dataset", "split"], sort=True):
        scored = rows[rows["metric"] == metric]
        if scored.empty:
            grids.append(Grid(f"{name}:{split}", b"", [f"no {metric} values: no image grid (choose --grid-metric)"]))
            continue
        spec = scored["spec"].iloc[0]
        higher = found.higher_is_better if (found := find_metric(spec)) else True
        per_image = scored.groupby(["run_dir", "config_id", "image_id"])["value"].mean()
        chosen = pick_images(per_image.groupby("image_id").mean(), higher)
        try:
            dataset = open_dataset(name if is_path_spec(name) else f"{name}:{split}", data_root)
        except (DatasetError, UnknownNameError, FileNotFoundError) as exc:
            grids.append(Grid(f"{name}:{split}", b"", [f"dataset not readable here ({exc}): no image grid"]))
            continue
        notes = [f"ranked by the mean {metric} over the configurations shown ({'higher' if higher else 'lower'} is better)"]
        ids = list(chosen.values())
        samples = {i: dataset.load(i) for i in ids}
        configs = _configs(rows, labels)
        first = scored[scored["sample"] == 0]
        stored = {c.label: dict(first[(first["run_dir"] == str(c.run_dir)) & (first["config_id"] == c.config_id)]
                                [["image_id", "value"]].itertuples(index=False)) for c in configs}
        shown = {c.label: _outputs(c, dataset, ids, torch.device(device), notes, spec, stored[c.label]) for c in configs}
        columns = ["LQ", *shown, *(["GT"] if dataset.paired else [])]
        table_rows = []
        for rank, image_id in chosen.items():
            images = [samples[image_id].lq, *(shown[c.label].get(image_id) for c in configs)]
            captions = ["input", *(f"{metric} {per_image.get((str(c.run_dir), c.config_id, image_id), np.nan):.4g}"
                                   for c in configs)]
            if dataset.paired:
                images.append(samples[image_id].gt)
                captions.append("ground truth")
            table_rows.append((rank, image_id, images, captions))
        grids.append(Grid(f"{name}:{split}", _figure(columns, table_rows), notes))
    return grids
