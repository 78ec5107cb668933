"""IndRMSE against an explicit loop over pixels, and its set value against PMRF's sqrt(mean MSE)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lpmrf_bench.metrics.base import MetricBatch
from lpmrf_bench.metrics.indrmse import INDRMSE, indrmse


def test_per_image_rmse_and_set_value():
    g = torch.Generator().manual_seed(0)
    out = torch.randint(0, 256, (3, 3, 7, 5), generator=g, dtype=torch.uint8)
    ref = torch.randint(0, 256, (3, 3, 7, 5), generator=g, dtype=torch.uint8)
    ref[2] = out[2]
    got = INDRMSE.build(torch.device("cpu"), None)(MetricBatch(out=out, reference=ref))
    assert got.dtype == torch.float64
    for i in range(3):
        sq = [(int(a) - int(b)) ** 2 for a, b in zip(out[i].flatten().tolist(), ref[i].flatten().tolist())]
        assert got[i].item() == pytest.approx(math.sqrt(sum(sq) / len(sq)), rel=1e-12)
    assert got[2] == 0
    # PMRF: ind_mse = mean over images of per-image MSE; IndRMSE = its square root (not the mean of RMSEs)
    set_value = INDRMSE.aggregate(got.numpy())
    per_image_mse = [np.mean((out[i].double() - ref[i].double()).numpy() ** 2) for i in range(3)]
    assert set_value.value == pytest.approx(math.sqrt(np.mean(per_image_mse)), rel=1e-12)
    assert set_value.value > float(got.mean())
    assert set_value.n == 3
    assert INDRMSE.aggregate(np.array([np.nan, 3.0, 4.0])).value == pytest.approx(math.sqrt(12.5))


def test_needs_a_reference():
    out = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match="reference restoration"):
        indrmse(MetricBatch(out=out))
    with pytest.raises(ValueError, match="differ in size"):
        indrmse(MetricBatch(out=out, reference=torch.zeros(1, 3, 4, 5, dtype=torch.uint8)))
    assert INDRMSE.kind == "reference-restoration" and not INDRMSE.higher_is_better
