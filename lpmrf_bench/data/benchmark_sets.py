"""The four standard blind face restoration test sets, found under the data root as their archives unpack.

CelebA-Test (3000 synthetic LQ/GT pairs), LFW-Test (1711), WebPhoto-Test (407) and WIDER-Test (970 real LQ
images): flat folders of aligned 512x512 crops; outputs are matched to ground truth by identical basename.
CelebA-Test, LFW-Test and WebPhoto-Test are published on the GFPGAN project page, WIDER-Test on the
CodeFormer project page (the PMRF README points to both). Each folder is looked up directly under the data
root and one level down (`<root>/celeba_test/celeba_512_validation`), since unzipped archives often add a
folder.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lpmrf_bench.data import DATA_ROOT_ENV, DatasetSpec
from lpmrf_bench.data.base import DatasetError, Sample
from lpmrf_bench.data.folder import FolderDataset
from lpmrf_bench.imageio import IMAGE_EXTENSIONS, ImageReadError

RESOLUTION = 512
GFPGAN_PAGE = "https://xinntao.github.io/projects/gfpgan"
CODEFORMER_PAGE = "https://shangchenzhou.com/projects/CodeFormer/"


@dataclass(frozen=True)
class BenchmarkLayout:
    """Where a set's files live under the data root, how many there are, and where they are published."""

    name: str
    lq: str  # folder name of the LQ images
    gt: str | None  # folder name of the ground truth (None: LQ-only, real degradations)
    count: int
    title: str  # the set's name as its publishers write it
    page: str


class BenchmarkSet(FolderDataset):
    """A FolderDataset whose images must be `resolution` x `resolution`, checked as each one is loaded."""

    def load(self, image_id: str) -> Sample:
        sample = super().load(image_id)
        lq_path, gt_path = self.paths(image_id)
        for image, path in ((sample.lq, lq_path), (sample.gt, gt_path)):
            if image is not None and image.shape[:2] != (self.resolution, self.resolution):
                raise ImageReadError(path, f"is {image.shape[1]}x{image.shape[0]}; {self.name} images are "
                                           f"{self.resolution}x{self.resolution} aligned face crops")
        return sample


def _holds_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())


def _find(root: Path, folder: str) -> Path | None:
    """The folder named `folder` that holds the images: `root/folder` or one level down (`root/*/folder`,
    which includes the `root/folder/folder` of an archive that repeats its name)."""
    candidates = [p for p in [root / folder, *sorted(root.glob(f"*/{folder}"))] if p.is_dir()]
    with_images = [p for p in candidates if _holds_images(p)]
    if len(with_images) > 1 and with_images[0] != root / folder:
        raise DatasetError(f"{folder}/ appears more than once under {root}: {', '.join(str(p) for p in with_images)}; "
                           "keep one copy or pass the one to use with --data-root")
    if with_images:
        return with_images[0]
    return candidates[0] if candidates else None


def _missing(layout: BenchmarkLayout, root: Path | None, folders: list[str]) -> DatasetError:
    expected = " and ".join(f"<data root>/{f}/" for f in folders)
    where = (f"no {' or '.join(f + '/' for f in folders)} under the data root {root} (looked there and one level down)"
             if root is not None else f"no data root is set (pass --data-root DIR or set {DATA_ROOT_ENV})")
    return DatasetError(
        f"{layout.name}: {where}. {layout.title} ({layout.count} images) is published on {layout.page}; "
        f"download it and unpack it so that {expected} {'hold' if len(folders) > 1 else 'holds'} the images.")


def _check_first_size(layout: BenchmarkLayout, dataset: FolderDataset) -> None:
    """Open only the header of the first image: a set of the wrong resolution fails now, not mid-run."""
    lq_path, _ = dataset.paths(dataset.image_ids()[0])
    try:
        with Image.open(lq_path) as img:
            width, height = img.size
    except OSError:
        return  # an unreadable file is reported with its reason when it is loaded
    if (width, height) != (RESOLUTION, RESOLUTION):
        raise DatasetError(f"{layout.name}: {lq_path} is {width}x{height}, but {layout.title} holds "
                           f"{RESOLUTION}x{RESOLUTION} aligned crops; is {lq_path.parent} a resized copy? "
                           f"Use the files as published on {layout.page}")


def open_benchmark(layout: BenchmarkLayout, split: str, root: Path | None) -> BenchmarkSet:
    """Find and open one benchmark set; warns when its image count or LQ/GT names differ from the published set."""
    folders = [layout.lq] + ([layout.gt] if layout.gt else [])
    if root is None:
        raise _missing(layout, None, folders)
    found = {f: _find(root, f) for f in folders}
    if any(path is None for path in found.values()):
        raise _missing(layout, root, [f for f, path in found.items() if path is None])
    gt_dir = found[layout.gt] if layout.gt else None
    dataset = BenchmarkSet(found[layout.lq], gt_dir, name=layout.name, split=split,
                           expected_count=layout.count, resolution=RESOLUTION)
    if dataset.mismatches:
        listed = "; ".join(list(dataset.mismatches.values())[:5])
        more = f" (and {len(dataset.mismatches) - 5} more)" if len(dataset.mismatches) > 5 else ""
        warnings.warn(f"{layout.name}: {len(dataset.mismatches)} LQ/GT names do not match and are left out: "
                      f"{listed}{more}", stacklevel=2)
    found_count = len(dataset.image_ids())
    if found_count != layout.count:
        warnings.warn(f"{layout.name}: found {found_count} images in {found[layout.lq]}, the published set has "
                      f"{layout.count}; results will not be comparable with published numbers", stacklevel=2)
    _check_first_size(layout, dataset)
    return dataset


def _spec(layout: BenchmarkLayout, description: str) -> DatasetSpec:
    return DatasetSpec(name=layout.name, open=functools.partial(open_benchmark, layout), paired=layout.gt is not None,
                       resolution=RESOLUTION, counts={"test": layout.count}, description=description,
                       source=layout.page)


CELEBA_TEST = _spec(
    BenchmarkLayout("celeba-test", "celeba_512_validation_lq", "celeba_512_validation", 3000, "CelebA-Test", GFPGAN_PAGE),
    "3000 CelebA-HQ faces with synthetic degradations (GFPGAN's test pairs); LQ + GT")
LFW_TEST = _spec(
    BenchmarkLayout("lfw-test", "lfw_cropped_faces", None, 1711, "LFW-Test", GFPGAN_PAGE),
    "1711 low-quality LFW faces, one per identity; real degradations, LQ only")
WEBPHOTO_TEST = _spec(
    BenchmarkLayout("webphoto-test", "WebPhoto-Test", None, 407, "WebPhoto-Test", GFPGAN_PAGE),
    "407 faces from old photos on the internet; real degradations, LQ only")
WIDER_TEST = _spec(
    BenchmarkLayout("wider-test", "Wider-Test", None, 970, "WIDER-Test", CODEFORMER_PAGE),
    "970 heavily degraded faces from WIDER Face; real degradations, LQ only")
