"""Per-image values of the full-reference metrics before their speed rewrite, for tests/test_fullref_speed_paths.py.

The values must not move (float64, within 1e-10) when the kernels are rewritten for speed (issue 19), so
the implementation of commit a3237b4 (torch float64 grouped conv2d, whole-batch float64 arithmetic) scored
eight 512x512 photographs and stored them here. Regenerate (only with that implementation) with:

    mkdir /tmp/before && git archive a3237b4 | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before python tests/reference/fullref_values.py > tests/reference/fullref_values.json
"""
from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import torch
from skimage import data as skdata

NAMES = ("astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry", "hubble_deep_field", "cat")


def reference_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """(out, gt) uint8 [8,3,512,512]: photographs resized to 512 px, and a blurred, noisy, JPEG-compressed copy."""
    rng = np.random.default_rng(19)
    outs, gts = [], []
    for name in NAMES:
        image = getattr(skdata, name)()
        image = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]
        gt = cv2.resize(image, (512, 512), interpolation=cv2.INTER_AREA)
        noisy = np.clip(cv2.GaussianBlur(gt, (5, 5), 1.2) + rng.normal(0, 8, gt.shape), 0, 255).astype(np.uint8)
        ok, jpeg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 60])
        outs.append(cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED))
        gts.append(gt)
    as_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return as_tensor(outs), as_tensor(gts)


def main() -> None:
    from lpmrf_bench.metrics import METRICS, PROTOCOLS
    from lpmrf_bench.metrics.base import MetricBatch

    out, gt = reference_pairs()
    specs = [s for p in PROTOCOLS.values() for s in p.values()
             if s.split("/")[0] in ("psnr", "ssim", "psnr_y", "ssim_y", "mse")]
    batch = MetricBatch(out=out, gt=gt)
    values = {s: METRICS.get(s).build(torch.device("cpu"), None)(batch).tolist() for s in specs}
    print(json.dumps({"script": "tests/reference/fullref_values.py", "images": NAMES, "torch": torch.__version__,
                      "values": values}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
