"""IndRMSE: how far a method's output lies from a reference restoration of the same degraded input.

PMRF's sets without ground truth are scored by the distance to the posterior-mean (MMSE) output
(`evaluation/compute_metrics_blind.py`, `--mmse_rec_path`): both read as 8-bit PNGs, the mean squared
error per image on the 0-255 scale, averaged over the set. The stored per-image value is the RMSE; the set
value is the root of the mean per-image MSE (`sqrt(ind_mse)` of the script), not the mean of the RMSEs.
The engine fills `MetricBatch.reference` (uint8, same size as `out`) from the reference method.
"""
from __future__ import annotations

import numpy as np
import torch

from lpmrf_bench.metrics.base import MetricBatch, MetricSpec, SetValue, stateless
from lpmrf_bench.metrics.fullref import mse


def indrmse(batch: MetricBatch) -> torch.Tensor:
    """Per-image RMSE between `out` and `reference` on the 0-255 scale, float64 [B]."""
    if batch.reference is None:
        raise ValueError(
            "IndRMSE needs a reference restoration of the same LQ images (MetricBatch.reference), e.g. the "
            "posterior-mean method's outputs; run it with a reference method or drop `indrmse`"
        )
    if batch.reference.shape != batch.out.shape:
        raise ValueError(
            f"output {tuple(batch.out.shape)} and reference restoration {tuple(batch.reference.shape)} differ in size"
        )
    return mse(batch.out, batch.reference).sqrt()


def root_mean_square(values: np.ndarray) -> SetValue:
    """Set value: sqrt of the mean per-image MSE over the images with a defined value."""
    finite = values[np.isfinite(values)]
    return SetValue(float(np.sqrt(np.mean(finite**2))) if finite.size else float("nan"), int(finite.size))


INDRMSE = MetricSpec(
    name="indrmse", spec="indrmse/rgb-255/pmrf-v1", kind="reference-restoration", higher_is_better=False,
    build=stateless(indrmse), aggregate=root_mean_square,
    description="RMSE to a reference restoration (default: the posterior mean), RGB 0-255; set value "
                "sqrt(mean per-image MSE) (PMRF compute_metrics_blind.py)",
)
