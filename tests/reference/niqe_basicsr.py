"""Reference NIQE values from basicsr 1.4.2's own code, for tests/test_niqe.py.

basicsr cannot be imported whole with current torchvision, so this loads only the modules NIQE needs
(metrics/niqe.py, metrics/metric_util.py, utils/color_util.py, utils/matlab_functions.py) straight from
the unpacked sdist, with a stub registry. Needs numpy, scipy, torch and scikit-image; basicsr is never
installed. Regenerate with:

    pip download basicsr==1.4.2 --no-deps --no-binary basicsr --no-build-isolation -d /tmp/basicsr_sdist
    tar xzf /tmp/basicsr_sdist/basicsr-1.4.2.tar.gz -C /tmp/basicsr_sdist
    python tests/reference/niqe_basicsr.py /tmp/basicsr_sdist/basicsr-1.4.2 > tests/reference/niqe_basicsr.json
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import numpy as np
from skimage import data as skdata

from _official_source import Registry, install_module


def reference_images() -> dict[str, np.ndarray]:
    """uint8 RGB [H, W, 3] photographs; the test rebuilds exactly these."""
    astronaut = skdata.astronaut()
    rng = np.random.default_rng(0)
    noisy = np.clip(np.round(astronaut.astype(np.float64) + rng.normal(0, 15, astronaut.shape)), 0, 255)
    flat = np.full((200, 300, 3), 128, np.uint8)
    flat[:, 150:] = skdata.chelsea()[:200, :150]
    return {
        "astronaut": astronaut,
        "astronaut_noise15": noisy.astype(np.uint8),
        "chelsea": skdata.chelsea(),
        "coffee": skdata.coffee(),
        "half_flat": flat,
    }


def load_basicsr_niqe(root: Path):
    module = functools.partial(install_module, root)
    module("basicsr")
    utils = module("basicsr.utils")
    module("basicsr.utils.registry", METRIC_REGISTRY=Registry())
    color = module("basicsr.utils.color_util", "basicsr/utils/color_util.py")
    utils.bgr2ycbcr = color.bgr2ycbcr
    module("basicsr.utils.matlab_functions", "basicsr/utils/matlab_functions.py")
    module("basicsr.metrics")
    module("basicsr.metrics.metric_util", "basicsr/metrics/metric_util.py")
    return module("basicsr.metrics.niqe", "basicsr/metrics/niqe.py").calculate_niqe


def main(root: str) -> None:
    calculate_niqe = load_basicsr_niqe(Path(root))
    values = {}
    for name, rgb in reference_images().items():
        # as PMRF: cv2.imread gives BGR, calculate_niqe(img, 0, input_order='HWC', convert_to='y')
        values[name] = float(calculate_niqe(rgb[..., ::-1].copy(), 0, input_order="HWC", convert_to="y"))
    print(json.dumps({
        "source": "basicsr 1.4.2 sdist (PyPI), basicsr/metrics/niqe.py calculate_niqe(img_bgr, 0, 'HWC', 'y'), "
                  "as called by ohayonguy/PMRF evaluation/calculate_niqe.py @ dc2ec0d9c9f81bf23a89320a7a512e32f8297775",
        "script": "tests/reference/niqe_basicsr.py",
        "numpy": np.__version__,
        "niqe": values,
    }, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
