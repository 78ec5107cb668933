"""The fast full-reference kernels (issue 19): values unchanged, CPU and device paths equal, peers agree.

Eight 512x512 photographs (tests/reference/fullref_values.py) at batch 8 and batch 1: against the values of
the kernels before the rewrite (fixture), scikit-image, a basicsr-style OpenCV SSIM written here, and
torchmetrics' PSNR.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr

from lpmrf_bench.metrics import METRICS, fullref
from lpmrf_bench.metrics.base import MetricBatch

REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
from fullref_values import reference_pairs  # noqa: E402

CPU = torch.device("cpu")
FIXTURE = json.loads((REFERENCE / "fullref_values.json").read_text())["values"]


@pytest.fixture(scope="module")
def pairs() -> tuple[torch.Tensor, torch.Tensor]:
    return reference_pairs()


def score(spec: str, out: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
    return METRICS.get(spec).build(CPU, None)(MetricBatch(out=out, gt=gt)).numpy()


@pytest.mark.parametrize("spec", sorted(FIXTURE))
def test_values_unchanged_at_batch_8_and_1(pairs, spec):
    out, gt = pairs
    want = np.array(FIXTURE[spec])
    batch8 = score(spec, out, gt)
    batch1 = np.concatenate([score(spec, out[i : i + 1], gt[i : i + 1]) for i in (0, 5)])
    assert batch8.dtype == np.float64
    np.testing.assert_allclose(batch8, want, rtol=0, atol=1e-10)
    np.testing.assert_allclose(batch1, want[[0, 5]], rtol=0, atol=1e-10)


def test_device_path_equals_cpu_path(pairs, monkeypatch):
    # torch's float64 grouped conv2d on CPU is slow: two 160x192 crops keep this test short
    out, gt = (x[:2, :, 100:260, 150:342] for x in pairs)
    cpu = {spec: score(spec, out, gt) for spec in FIXTURE}
    monkeypatch.setattr(fullref, "cpu_kernels_for", lambda device: False)
    for spec in FIXTURE:
        np.testing.assert_allclose(score(spec, out, gt), cpu[spec], rtol=0, atol=1e-12, err_msg=spec)


def basicsr_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """basicsr's `_ssim` (metrics/psnr_ssim.py) per channel: a 2-D Gaussian window by cv2.filter2D, valid crop."""
    k = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(k, k.transpose())
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for x, y in zip(a.astype(np.float64), b.astype(np.float64)):
        mu1, mu2 = (cv2.filter2D(t, -1, window)[5:-5, 5:-5] for t in (x, y))
        s1 = cv2.filter2D(x**2, -1, window)[5:-5, 5:-5] - mu1**2
        s2 = cv2.filter2D(y**2, -1, window)[5:-5, 5:-5] - mu2**2
        s12 = cv2.filter2D(x * y, -1, window)[5:-5, 5:-5] - mu1 * mu2
        values.append((((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))).mean())
    return float(np.mean(values))


@pytest.mark.slow
def test_agrees_with_peers_at_batch_8(pairs):
    out, gt = pairs
    psnr = score("psnr/rgb-255-f64/pmrf-v1", out, gt)
    ssim = score("ssim/rgb-gauss11-s1.5-valid-f64/pmrf-v1", out, gt)
    mse = score("mse/rgb-255-f64/pmrf-v1", out, gt)
    torchmetrics_psnr = tm_psnr(out.double(), gt.double(), data_range=255.0, reduction="none", dim=(1, 2, 3))
    # torchmetrics takes log(data_range) of a float32 tensor: its PSNR agrees to float32 precision only
    np.testing.assert_allclose(psnr, torchmetrics_psnr.numpy(), rtol=0, atol=1e-5)
    for i in (0, 3, 7):
        a, b = out[i].numpy(), gt[i].numpy()
        assert psnr[i] == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-10)
        assert mse[i] == pytest.approx(np.mean((a.astype(np.float64) - b) ** 2), abs=1e-10)
        want = structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=255, channel_axis=0,
                                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert ssim[i] == pytest.approx(want, abs=1e-10)
        assert ssim[i] == pytest.approx(basicsr_ssim(a, b), abs=1e-10)


def test_exact_integer_mse_and_identical_images():
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.integers(0, 256, (3, 3, 37, 41), dtype=np.uint8))
    b = torch.from_numpy(rng.integers(0, 256, (3, 3, 37, 41), dtype=np.uint8))
    exact = [sum(int(x) ** 2 for x in (a[i].numpy().astype(np.int64) - b[i].numpy()).ravel()) for i in range(3)]
    assert fullref.mse(a, b).tolist() == [e / a[0].numel() for e in exact]
    assert torch.isinf(fullref.psnr(a, a)).all() and torch.isinf(fullref.psnr_y(a, a)).all()
    assert fullref.mse(a.permute(0, 1, 3, 2), b.permute(0, 1, 3, 2)).tolist() == fullref.mse(a, b).tolist()
