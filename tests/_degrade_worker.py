"""A light module for test_degrade's worker processes (spawned children import only this, not torch)."""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
from skimage import data

from lpmrf_bench.data.degrade import DIFFACE, degrade


def degrade_keys(args: tuple[list[str], int, int]) -> dict[str, str]:
    """key -> sha256 of the (lq, gt) bytes of the astronaut photograph degraded at `size` for each key."""
    keys, seed, size = args
    hq = cv2.resize(np.ascontiguousarray(data.astronaut()), (size, size), interpolation=cv2.INTER_AREA)
    out = {}
    for key in keys:
        lq, gt, _ = degrade(hq, DIFFACE.scaled_to(size), seed, key)
        out[key] = hashlib.sha256(lq.tobytes() + gt.tobytes()).hexdigest()
    return out
