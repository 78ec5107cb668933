"""PSNR/SSIM (RGB and Y) against scikit-image on real photographs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lpmrf_bench.metrics.fullref import luma_bt601, mse, psnr, ssim


def _t(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


def _sk_ssim(a: np.ndarray, b: np.ndarray, channel_axis) -> float:
    return structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, channel_axis=channel_axis)


def test_psnr_ssim_rgb_match_scikit_image(photo_pairs):
    out = _t([p[1] for p in photo_pairs])
    gt = _t([p[2] for p in photo_pairs])
    got_psnr, got_ssim = psnr(out, gt).numpy(), ssim(out, gt).numpy()
    for i, (_, degraded, clean) in enumerate(photo_pairs):
        assert abs(got_psnr[i] - peak_signal_noise_ratio(clean, degraded, data_range=255)) < 1e-9
        assert abs(got_ssim[i] - _sk_ssim(clean.astype(np.float64), degraded.astype(np.float64), 2)) < 1e-6


def test_y_channel_metrics_match_scikit_image_ycbcr(photo_pairs):
    out = _t([p[1] for p in photo_pairs])
    gt = _t([p[2] for p in photo_pairs])
    from lpmrf_bench.metrics.fullref import PSNR_Y, SSIM_Y
    from lpmrf_bench.metrics.base import MetricBatch

    batch = MetricBatch(out=out, gt=gt)
    got_psnr = PSNR_Y.build(torch.device("cpu"), None)(batch).numpy()
    got_ssim = SSIM_Y.build(torch.device("cpu"), None)(batch).numpy()
    for i, (_, degraded, clean) in enumerate(photo_pairs):
        y_out, y_gt = rgb2ycbcr(degraded)[..., 0], rgb2ycbcr(clean)[..., 0]  # limited range, unrounded
        assert abs(got_psnr[i] - peak_signal_noise_ratio(y_gt, y_out, data_range=255)) < 1e-6
        assert abs(got_ssim[i] - _sk_ssim(y_gt, y_out, None)) < 1e-6


def test_luma_spans_limited_range():
    black_white = torch.tensor([[[[0]], [[0]], [[0]]], [[[255]], [[255]], [[255]]]], dtype=torch.uint8)
    assert luma_bt601(black_white).flatten().tolist() == pytest.approx([16.0, 235.0])


def test_psnr_is_per_image_not_pooled(photo_pairs):
    """torchmetrics' default pools the error over the batch; the protocol averages per-image PSNR."""
    out = _t([p[1] for p in photo_pairs]).double()
    gt = _t([p[2] for p in photo_pairs]).double()
    per_image = psnr(out, gt)
    pooled = 10 * torch.log10(255.0**2 / ((out - gt) ** 2).mean())
    assert per_image.shape == (len(photo_pairs),)
    assert abs(per_image.mean() - pooled) > 1e-3
    assert torch.allclose(mse(out, gt), ((out - gt) ** 2).mean(dim=(1, 2, 3)))


def test_identical_images_give_infinite_psnr_and_unit_ssim(photo_pairs):
    clean = _t([photo_pairs[0][2]])
    assert torch.isinf(psnr(clean, clean)).all()
    assert ssim(clean, clean).item() == pytest.approx(1.0)


def test_ssim_rejects_images_smaller_than_window():
    tiny = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="11x11"):
        ssim(tiny, tiny)
