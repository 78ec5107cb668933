"""Reference NIQE values from pyiqa 0.1.16's own code, fed the vendored MATLAB-release model, for tests/test_niqe.py.

pyiqa is never installed: this loads `archs/niqe_arch.py` (with what it imports: archs/func_util.py,
archs/fsim_arch.py, archs/arch_util.py, utils/, matlab_utils/) from the unpacked wheel, without running the
package `__init__`s that pull its ~70 dependencies. pyiqa's `NIQE` module downloads its parameters
(`niqe_modelparameters.mat`) at construction, which is impossible here, so this calls the functions below
it (`niqe`, `calculate_niqe`) with mu and cov from lpmrf_bench/metrics/data/niqe_pris_params.npz.
Needs numpy, scipy, torch, opencv and scikit-image. Regenerate with:

    pip download pyiqa==0.1.16 --no-deps -d /tmp/pyiqa_dl && unzip -q /tmp/pyiqa_dl/pyiqa-0.1.16-*.whl -d /tmp/pyiqa_src
    python tests/reference/niqe_pyiqa.py /tmp/pyiqa_src > tests/reference/niqe_pyiqa.json

Recorded per image (uint8 RGB, see `reference_images`):
- core: pyiqa's `niqe(y, mu, cov)` on OUR basicsr luma (`niqe_luma`), with pyiqa's own 7x7 window;
- core_same_window: the same with pyiqa's `fspecial` swapped for the vendored window, so that only
  arithmetic differs from `niqe_of_luma` (basicsr convention);
- pipeline_yiq: pyiqa's default path, `calculate_niqe(x, 0, True, 'yiq', mu, cov)` on x = uint8 / 255
  (float32, as its image loader gives);
- pipeline_ycbcr: the same with color_space='ycbcr'.
Where the unpacked wheel holds pyiqa's calibration images (ResultsCalibra/dist_dir), it also records
pipeline_yiq on them beside the values pyiqa publishes for its own `niqe` and for the MATLAB release.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage import data as skdata

sys.path.insert(0, str(Path(__file__).parent))
from niqe_basicsr import reference_images as basicsr_images
from pyiqa_fullref import import_pyiqa_module, pin_mkl_kernel

# chaofengc/IQA-PyTorch ResultsCalibra/calibration_summary.csv @ 065c2b73eecc7fbfc5dde75cccb5328bf62f3cc6,
# rows "niqe(ours)" (pyiqa) and, full precision, ResultsCalibra/results_original.csv
# @ 13792e4f5f05d8f74f5677aad8139dc988be07c9, row "niqe" (the MATLAB release)
CALIBRATION = ("I03", "I04", "I06", "I08", "I19")
PYIQA_PUBLISHED = (15.6538, 3.6549, 3.2342, 3.1921, 9.0722)
MATLAB_PUBLISHED = (15.7536293917814, 3.65492152353770, 3.23547743716998, 3.18403333858339, 8.63519663862637)


def reference_images() -> dict[str, np.ndarray]:
    """uint8 RGB [H, W, 3] photographs at several sizes (>= 192 px a side); the test rebuilds exactly these."""
    images = basicsr_images()
    images["rocket"] = skdata.rocket()
    images["camera_gray"] = np.repeat(skdata.camera()[..., None], 3, axis=2)
    images["astronaut_192x288"] = skdata.astronaut()[:192, :288].copy()
    images["coffee_200x250"] = skdata.coffee()[100:300, 150:400].copy()
    return images


def load_pyiqa_niqe(root: Path):
    return import_pyiqa_module(root, "pyiqa.archs.niqe_arch"), import_pyiqa_module(root, "pyiqa.archs.func_util")


@contextlib.contextmanager
def window_swapped(func_util, window: np.ndarray):
    """pyiqa builds its window inside `normalize_img_with_gauss`; swap the builder for one call."""
    original = func_util.fspecial
    func_util.fspecial = lambda *args, **kwargs: torch.from_numpy(window)[None, None]
    try:
        yield
    finally:
        func_util.fspecial = original


def main(root: str) -> None:
    from lpmrf_bench.metrics.niqe import PYIQA, niqe, niqe_luma, pristine_model

    niqe_arch, func_util = load_pyiqa_niqe(Path(root))
    model = pristine_model()
    mu, cov = torch.from_numpy(model.mu), torch.from_numpy(model.cov)

    def pipeline(rgb: np.ndarray, color_space: str) -> float:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
        return float(niqe_arch.calculate_niqe(x, 0, True, color_space, mu, cov))

    values = {}
    for name, rgb in reference_images().items():
        y = torch.from_numpy(niqe_luma(torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()))[:, None]
        core = float(niqe_arch.niqe(y, mu[None], cov[None]))
        with window_swapped(func_util, model.window):
            core_same_window = float(niqe_arch.niqe(y, mu[None], cov[None]))
        values[name] = {"core": core, "core_same_window": core_same_window,
                        "pipeline_yiq": pipeline(rgb, "yiq"), "pipeline_ycbcr": pipeline(rgb, "ycbcr")}

    calibration = {}
    folder = Path(root) / "ResultsCalibra" / "dist_dir"
    for name, published, matlab in zip(CALIBRATION, PYIQA_PUBLISHED, MATLAB_PUBLISHED):
        if not (folder / f"{name}.bmp").is_file():
            continue
        rgb = cv2.imread(str(folder / f"{name}.bmp"), cv2.IMREAD_COLOR)[..., ::-1].copy()
        batch = torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()
        calibration[name] = {"pipeline_yiq": pipeline(rgb, "yiq"), "pyiqa_published": published,
                             "matlab_published": matlab, "lpmrf_bench_pyiqa": float(niqe(batch, PYIQA)),
                             "lpmrf_bench_pmrf": float(niqe(batch))}
    print(json.dumps({
        "source": "pyiqa 0.1.16 wheel (PyPI): pyiqa/archs/niqe_arch.py niqe() and calculate_niqe(), "
                  "mu/cov from lpmrf_bench/metrics/data/niqe_pris_params.npz (pyiqa's own .mat is a download)",
        "calibration_source": "chaofengc/IQA-PyTorch ResultsCalibra/calibration_summary.csv "
                              "@ 065c2b73eecc7fbfc5dde75cccb5328bf62f3cc6 and results_original.csv "
                              "@ 13792e4f5f05d8f74f5677aad8139dc988be07c9; images from the wheel's ResultsCalibra/",
        "script": "tests/reference/niqe_pyiqa.py",
        "torch": torch.__version__,
        "mkl_cbwr": os.environ.get("MKL_CBWR"),
        "numpy": np.__version__,
        "niqe": values,
        "calibration": calibration,
    }, indent=1))


if __name__ == "__main__":
    pin_mkl_kernel()
    main(sys.argv[1])
