"""`outputs:DIR`: score restorations computed elsewhere, matched to the dataset by image_id.

Any published method's outputs can be benchmarked without wrapping the method. Files are matched by
image_id (path relative to DIR without extension); a missing file is an error for that image, files that
match no image of the set are reported by name.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lpmrf_bench.imageio import ImageReadError, list_images, read_image
from lpmrf_bench.restorers.base import RestoreBatch, RestoreInputError, RestorerSpec

log = logging.getLogger(__name__)


class OutputsFolder:
    def __init__(self, folder: Path):
        if not folder.is_dir():
            raise FileNotFoundError(f"outputs folder {folder} does not exist")
        self.folder = folder
        self.files = list_images(folder)
        if not self.files:
            raise FileNotFoundError(f"outputs folder {folder} holds no images")

    def report_extra(self, image_ids: list[str]) -> list[str]:
        """Files that match no image of the dataset (logged: usually a wrong folder or naming)."""
        extra = sorted(set(self.files) - set(image_ids))
        if extra:
            shown = ", ".join(extra[:10]) + (f" and {len(extra) - 10} more" if len(extra) > 10 else "")
            log.warning("outputs folder %s has %d file(s) matching no image of the set: %s", self.folder, len(extra), shown)
        return extra

    def __call__(self, batch: RestoreBatch, knobs: dict[str, Any]) -> torch.Tensor:
        images: list[np.ndarray] = []
        problems: dict[str, str] = {}
        want = tuple(batch.gt.shape[-2:]) if batch.gt is not None else None
        for image_id in batch.image_ids:
            path = self.files.get(image_id)
            if path is None:
                problems[image_id] = f"no restored image named {image_id}.* in {self.folder}"
                continue
            try:
                image, _ = read_image(path)
            except ImageReadError as exc:
                problems[image_id] = exc.reason + f" ({path})"
                continue
            want = want or image.shape[:2]
            if image.shape[:2] != want:
                problems[image_id] = f"{path.name} is {image.shape[1]}x{image.shape[0]}, expected {want[1]}x{want[0]}"
                continue
            images.append(image)
        if problems:
            raise RestoreInputError(problems)
        stacked = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        return stacked.to(batch.lq.device, torch.float32) / 255.0


def outputs_spec(arg: str) -> RestorerSpec:
    """`DIR` or `NAME=DIR` -> a restorer named `outputs:NAME` (NAME defaults to the folder's name)."""
    name, sep, folder = arg.partition("=")
    if not sep:
        folder, name = arg, Path(arg).expanduser().resolve().name
    path = Path(folder).expanduser().resolve()
    if not folder or not path.is_dir():
        raise FileNotFoundError(f"outputs:{arg}: the outputs folder {path} does not exist")
    return RestorerSpec(
        name=f"outputs:{name}",
        load=lambda weights, device: OutputsFolder(path),
        default_weights=str(path),
        description=f"precomputed restorations in {path}",
    )
