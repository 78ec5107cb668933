"""pyiqa-convention SSIM/PSNR against scikit-image and scipy on the YIQ luma computed here from the formula."""
from __future__ import annotations

import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage import data as skdata
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from lpmrf_bench.metrics.base import MetricBatch
from lpmrf_bench.metrics.fullref import psnr, ssim
from lpmrf_bench.metrics.pyiqa_conventions import PSNR_01, PSNR_Y_YIQ, SSIM_YIQ, yiq_luma

CPU = torch.device("cpu")
REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
from pyiqa_fullref import reference_pairs  # noqa: E402


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """uint8 [2,H,W,3]: real photographs and a blurred, noisy version (different sizes cropped to one)."""
    photos = (skdata.astronaut(), skdata.coffee())
    gt = np.stack([cv2.resize(im, (96, 80), interpolation=cv2.INTER_AREA) for im in photos])
    rng = np.random.default_rng(0)
    out = np.stack([cv2.GaussianBlur(im, (5, 5), 1.0) for im in gt]).astype(np.float64) + rng.normal(0, 8, gt.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8), gt


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


def y_formula(a: np.ndarray) -> np.ndarray:
    return np.round(a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114)


def ssim_relu_reference(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM map with scipy's Gaussian (radius 5 -> 11 taps), valid region, cs clamped at 0."""
    f = lambda a: gaussian_filter(a, 1.5, truncate=5 / 1.5)[5:-5, 5:-5]  # noqa: E731
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    cs = np.maximum((2 * cxy + c2) / (vx + vy + c2), 0)
    return float(((2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs).mean())


def float32_round(q: Fraction) -> Fraction:
    """Round an exact rational to the nearest float32 (ties to even), exactly."""
    if q == 0:
        return q
    e = math.floor(math.log2(abs(q)))
    e += (abs(q) >= Fraction(2) ** (e + 1)) - (abs(q) < Fraction(2) ** e)
    ulp = Fraction(2) ** (e - 23)
    return round(q / ulp) * ulp


def test_yiq_luma_is_pyiqas_fused_float32_chain():
    # exact rational arithmetic, one float32 rounding per fused step: fma(b, wb, fma(g, wg, r * wr)) x 255
    # (MKL's AVX-512 `rgb2yiq`); the colours are random ones plus ones where the unfused sum rounds elsewhere
    rng = np.random.default_rng(0)
    colours = [tuple(map(int, c)) for c in rng.integers(0, 256, (300, 3))] + [(252, 158, 179), (142, 172, 27), (240, 140, 40)]
    w = [Fraction(float(np.float32(v))) for v in (0.299, 0.587, 0.114)]
    images = torch.tensor(colours, dtype=torch.uint8).T.reshape(1, 3, 1, -1)
    got = yiq_luma(images, rounded=False)[0, 0, 0].tolist()
    for (r, g, b), value in zip(colours, got):
        x = [float32_round(Fraction(v, 255)) for v in (r, g, b)]
        acc = float32_round(x[0] * w[0])
        for xi, wi in zip(x[1:], w[1:]):
            acc = float32_round(acc + xi * wi)
        assert value == float(float32_round(acc * 255)), (r, g, b)


def test_yiq_luma_is_rounded_formula(pair):
    out, _ = pair
    y = yiq_luma(t(out))[:, 0].numpy()
    exact = y_formula(out)
    assert np.abs(y - exact).max() <= 1 and (y == exact).mean() > 0.999


def test_ssim_matches_skimage_on_yiq_y(pair):
    out, gt = pair
    got = SSIM_YIQ.build(CPU, None)(MetricBatch(out=t(out), gt=t(gt)))
    for i in range(2):
        want = structural_similarity(y_formula(out[i]), y_formula(gt[i]), data_range=255, gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False)
        assert got[i].item() == pytest.approx(want, abs=1e-4)
    assert got.dtype == torch.float64


def test_ssim_clamps_negative_structure(pair):
    _, gt = pair
    inverted = 255 - gt  # anti-correlated structure: cs < 0 almost everywhere
    got = SSIM_YIQ.build(CPU, None)(MetricBatch(out=t(inverted), gt=t(gt)))
    for i in range(2):
        want = ssim_relu_reference(y_formula(inverted[i]), y_formula(gt[i]))
        assert got[i].item() == pytest.approx(want, abs=1e-4)
    plain = ssim(yiq_luma(t(inverted)), yiq_luma(t(gt)))
    assert torch.all(plain < 0) and torch.all(got >= 0)


def test_psnr_conventions(pair):
    out, gt = pair
    got = PSNR_01.build(CPU, None)(MetricBatch(out=t(out), gt=t(gt)))
    for i in range(2):
        mse01 = mean_squared_error(gt[i] / 255.0, out[i] / 255.0)
        assert got[i].item() == pytest.approx(10 * np.log10(1 / (mse01 + 1e-8)), abs=1e-9)
        assert got[i].item() == pytest.approx(peak_signal_noise_ratio(gt[i], out[i], data_range=255), abs=1e-4)
    same = PSNR_01.build(CPU, None)(MetricBatch(out=t(gt), gt=t(gt)))
    assert torch.allclose(same, torch.full((2,), 80.0, dtype=torch.float64))
    assert torch.isinf(psnr(t(gt), t(gt))).all()  # ours: +inf, as scikit-image


def test_psnr_y_is_unrounded_yiq(pair):
    out, gt = pair
    got = PSNR_Y_YIQ.build(CPU, None)(MetricBatch(out=t(out), gt=t(gt)))
    yo = (out[..., 0] * 0.299 + out[..., 1] * 0.587 + out[..., 2] * 0.114) / 255
    yg = (gt[..., 0] * 0.299 + gt[..., 1] * 0.587 + gt[..., 2] * 0.114) / 255
    for i in range(2):
        want = 10 * np.log10(1 / (np.mean((yo[i] - yg[i]) ** 2) + 1e-8))
        assert got[i].item() == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "astronaut_inverted"])
def test_matches_pyiqa_code(name):
    """Values computed by pyiqa 0.1.16's own ssim_arch/psnr_arch (tests/reference/pyiqa_fullref.py)."""
    want = json.loads((REFERENCE / "pyiqa_fullref.json").read_text())["values"][name]
    out, gt = (t(a[None]) for a in reference_pairs()[name])
    batch = MetricBatch(out=out, gt=gt)
    # pyiqa builds its Gaussian window in float32
    assert SSIM_YIQ.build(CPU, None)(batch).item() == pytest.approx(want["ssim"], abs=2e-6)
    # pyiqa accumulates the MSE in float32
    assert PSNR_01.build(CPU, None)(batch).item() == pytest.approx(want["psnr"], abs=1e-4)
    assert PSNR_Y_YIQ.build(CPU, None)(batch).item() == pytest.approx(want["psnry"], abs=1e-4)
