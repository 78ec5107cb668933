"""PSNR, SSIM and MSE as the face-restoration literature computes them (basicsr/MATLAB conventions).

Per image, float64, on the 0-255 scale, no border crop; SSIM with an 11x11 Gaussian window (sigma 1.5),
"valid" filtering (no padding) and the usual constants, averaged over channels. The `_y` variants use
the limited-range BT.601 luma of basicsr's `to_y_channel` (Y = 16 + 65.481 R + 128.553 G + 24.966 B, with
RGB in [0,1], left unrounded), which differs from pyiqa's YIQ luma by more than 1 dB.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lpmrf_bench.metrics.base import MetricBatch, MetricSpec, mean_with_infinities, stateless

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def luma_bt601(image: torch.Tensor) -> torch.Tensor:
    """uint8/float [B,3,H,W] on the 0-255 scale -> float64 [B,1,H,W] limited-range Y on the 0-255 scale."""
    rgb = image.to(torch.float64) / 255.0
    w = torch.tensor(_Y_WEIGHTS, dtype=torch.float64, device=image.device).view(1, 3, 1, 1)
    return (rgb * w).sum(dim=1, keepdim=True) + 16.0


def mse(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error on the 0-255 scale, float64 [B]."""
    diff = out.to(torch.float64) - gt.to(torch.float64)
    return diff.square().flatten(1).mean(dim=1)


def psnr(out: torch.Tensor, gt: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Per-image PSNR in dB, float64 [B]; +inf for identical images (as scikit-image)."""
    return 10.0 * torch.log10(data_range**2 / mse(out, gt))


def gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """The normalised 1-D Gaussian whose outer product is the 2-D SSIM window."""
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(out: torch.Tensor, gt: torch.Tensor, data_range: float = 255.0, window: int = 11, sigma: float = 1.5,
         nonnegative_cs: bool = False) -> torch.Tensor:
    """Per-image SSIM, float64 [B], averaged over channels; Gaussian window, valid region only.

    `nonnegative_cs` clamps the contrast-structure term at 0 before the product (pyiqa's variant).
    The separable window is applied as two 1-D valid convolutions (identical maths, ~5x fewer FLOPs).
    """
    x, y = out.to(torch.float64), gt.to(torch.float64)
    b, c, h, w = x.shape
    if h < window or w < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {h}x{w}")
    g = gaussian_window(window, sigma, x.device)
    rows, cols = g.view(1, 1, 1, window).expand(c, 1, 1, window), g.view(1, 1, window, 1).expand(c, 1, window, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, rows, groups=c), cols, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    if nonnegative_cs:
        cs = cs.clamp_min(0)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs
    return ssim_map.mean(dim=(2, 3)).mean(dim=1)


def needs_gt(batch: MetricBatch) -> torch.Tensor:
    if batch.gt is None:
        raise ValueError("full-reference metric called on a set without ground truth")
    if batch.gt.shape != batch.out.shape:
        raise ValueError(f"output {tuple(batch.out.shape)} and ground truth {tuple(batch.gt.shape)} differ in size")
    return batch.gt


PSNR = MetricSpec(
    name="psnr", spec="psnr/rgb-255-f64/pmrf-v1", kind="full-reference", higher_is_better=True,
    build=stateless(lambda b: psnr(b.out, needs_gt(b))),
    description="PSNR on RGB, 0-255, float64, per image then mean (PMRF/basicsr); identical images give +inf",
    aggregate=mean_with_infinities,
)
SSIM = MetricSpec(
    name="ssim", spec="ssim/rgb-gauss11-s1.5-valid-f64/pmrf-v1", kind="full-reference", higher_is_better=True,
    build=stateless(lambda b: ssim(b.out, needs_gt(b))),
    description="SSIM on RGB (channel mean), 11x11 Gaussian sigma 1.5, valid window, float64",
)
PSNR_Y = MetricSpec(
    name="psnr_y", spec="psnr_y/ycbcr601-limited-f64/basicsr-v1", kind="full-reference", higher_is_better=True,
    build=stateless(lambda b: psnr(luma_bt601(b.out), luma_bt601(needs_gt(b)))),
    description="PSNR on limited-range BT.601 Y (basicsr to_y_channel / MATLAB); identical images give +inf",
    aggregate=mean_with_infinities,
)
SSIM_Y = MetricSpec(
    name="ssim_y", spec="ssim_y/ycbcr601-limited-gauss11-s1.5-valid-f64/basicsr-v1", kind="full-reference",
    higher_is_better=True,
    build=stateless(lambda b: ssim(luma_bt601(b.out), luma_bt601(needs_gt(b)))),
    description="SSIM on limited-range BT.601 Y (basicsr to_y_channel / MATLAB)",
)
MSE = MetricSpec(
    name="mse", spec="mse/rgb-255-f64/pmrf-v1", kind="full-reference", higher_is_better=False,
    build=stateless(lambda b: mse(b.out, needs_gt(b))),
    description="mean squared error on RGB, 0-255 scale, per image",
)
