"""Reference values of pyiqa 0.1.16's default `ssim`, `psnr` and `psnry`, for tests/test_pyiqa_conventions.py.

pyiqa is never installed: this loads `archs/ssim_arch.py` and `archs/psnr_arch.py` (with the modules they
import: utils/color_util.py, utils/registry.py, matlab_utils/, archs/func_util.py) from the unpacked wheel,
without running the package `__init__`s that pull its ~70 dependencies. Needs numpy, scipy, torch and
scikit-image. Regenerate with:

    pip download pyiqa==0.1.16 --no-deps -d /tmp/pyiqa_dl && unzip -q /tmp/pyiqa_dl/pyiqa-0.1.16-*.whl -d /tmp/pyiqa_src
    python tests/reference/pyiqa_fullref.py /tmp/pyiqa_src > tests/reference/pyiqa_fullref.json
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage import data as skdata


def reference_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (output, ground truth), uint8 RGB [H, W, 3]; the test rebuilds exactly these."""
    rng = np.random.default_rng(0)
    pairs = {}
    for name, gt in (("astronaut", skdata.astronaut()), ("coffee", skdata.coffee()), ("chelsea", skdata.chelsea())):
        blurred = cv2.GaussianBlur(gt, (7, 7), 1.5).astype(np.float64)
        out = np.clip(np.round(blurred + rng.normal(0, 10, gt.shape)), 0, 255).astype(np.uint8)
        pairs[name] = (out, gt)
    pairs["astronaut_inverted"] = (255 - skdata.astronaut(), skdata.astronaut())
    return pairs


def import_pyiqa_module(root: Path, module: str):
    """Import one module of an unpacked pyiqa wheel at `root`, its packages stubbed without their heavy __init__."""
    for name in ("pyiqa", "pyiqa.utils", "pyiqa.archs"):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [str(root / name.replace(".", "/"))]
            sys.modules[name] = mod
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(module)


def load_pyiqa_archs(root: Path):
    return import_pyiqa_module(root, "pyiqa.archs.ssim_arch").SSIM, import_pyiqa_module(root, "pyiqa.archs.psnr_arch").PSNR


def main(root: str) -> None:
    SSIM, PSNR = load_pyiqa_archs(Path(root))
    # pyiqa/default_model_configs.py: ssim = SSIM(downsample=False, test_y_channel=True) (color_space 'yiq');
    # psnr = PSNR(test_y_channel=False); psnry = PSNR(test_y_channel=True)
    metrics = {"ssim": SSIM(downsample=False, test_y_channel=True), "psnr": PSNR(test_y_channel=False),
               "psnry": PSNR(test_y_channel=True)}
    values = {}
    for name, (out, gt) in reference_pairs().items():
        x, y = (torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255.0 for a in (out, gt))  # as pyiqa's loader
        values[name] = {m: float(fn(x, y).flatten()[0]) for m, fn in metrics.items()}
    print(json.dumps({
        "source": "pyiqa 0.1.16 wheel (PyPI): pyiqa/archs/ssim_arch.py SSIM, pyiqa/archs/psnr_arch.py PSNR, "
                  "with the options of pyiqa/default_model_configs.py for ssim, psnr and psnry",
        "script": "tests/reference/pyiqa_fullref.py",
        "torch": torch.__version__,
        "mkl_cbwr": os.environ.get("MKL_CBWR"),
        "values": values,
    }, indent=1))


def pin_mkl_kernel() -> None:
    """pyiqa's float32 `rgb2yiq` matmul rounds differently on each MKL kernel (SSE4.2: the plain float32
    sum; AVX2: another order; AVX-512: the fused chain lpmrf_bench computes), 504 of the 2^24 colours to
    another integer: pin the AVX-512 one (needs that CPU). MKL reads this at its first call, not at import."""
    os.environ["MKL_CBWR"] = "AVX512"


if __name__ == "__main__":
    pin_mkl_kernel()
    main(sys.argv[1])
