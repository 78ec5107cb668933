"""PSNR and SSIM as pyiqa computes them by default (Latent-PMRF's protocol), in plain torch.

Read from pyiqa's `archs/ssim_arch.py`, `archs/psnr_arch.py`, `archs/func_util.py:preprocess_rgb` and
`utils/color_util.py` (chaofengc/IQA-PyTorch). pyiqa loads images as float32 in [0, 1] (x / 255), then:
- `ssim` (`SSIM(downsample=False, test_y_channel=True, color_space='yiq')`): Y of YIQ
  (0.299 R + 0.587 G + 0.114 B, float32 matmul), x255, ROUNDED to integers, float64; 11x11 Gaussian
  sigma 1.5, valid filtering, C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2, and the contrast-structure term
  clamped at 0 (`relu`) before the product, mean over the map. No 256-px downsampling by default.
- `psnr` (`test_y_channel=False`): RGB in [0, 1], 10 log10(1 / (mse + 1e-8)): identical to ours except
  that identical images give 80 dB instead of +inf.
- `psnry` (`test_y_channel=True`): YIQ Y in [0, 1], NOT rounded (psnr skips `preprocess_rgb`), eps 1e-8.
YIQ luma is not BT.601 YCbCr luma: Y-channel values differ from basicsr's by more than 1 dB.

pyiqa's luma is a float32 `matmul`, whose rounding depends on the BLAS kernel that runs it: MKL's SSE4.2
kernel gives the plain float32 sum, its AVX2 and AVX-512 kernels two other roundings, and ~1500 of the 2^24
colours get another integer luma from one kernel to the next (a [3,1] product instead of pyiqa's [3,3] one
changes 504 on the same kernel). We compute the AVX-512 kernel's result, the fused chain
fma(b, wb, fma(g, wg, r * wr)), explicitly (a float32 product is exact in float64, so each float64 step
rounded to float32 is the fused one; checked equal to MKL's AVX-512 `rgb2yiq` for every 8-bit colour), so
the values no longer depend on the machine.
"""
from __future__ import annotations

import numpy as np
import torch

from lpmrf_bench.metrics.base import MetricSpec, stateless
from lpmrf_bench.metrics.fullref import Array, SsimConfig, mse, needs_gt, per_image, ssim_numpy, ssim_torch

_YIQ_Y = (0.299, 0.587, 0.114)
PSNR_EPS = 1e-8


def _cast(a: Array, dtype: str) -> Array:
    return a.astype(dtype) if isinstance(a, np.ndarray) else a.to(getattr(torch, dtype))


def _yiq(images: Array, rounded: bool) -> Array:
    """uint8 RGB [..., 3, H, W] (numpy or torch) -> float64 [..., H, W]: the fused float32 chain, x255."""
    x = _cast(_cast(images, "float32") / 255.0, "float64")
    w = [float(np.float32(v)) for v in _YIQ_Y]
    y = _cast(x[..., 0, :, :] * w[0], "float32")
    for channel in (1, 2):
        y = _cast(_cast(y, "float64") + x[..., channel, :, :] * w[channel], "float32")
    y = y * 255.0
    return _cast(y.round() if rounded else y, "float64")


def _check_uint8(*images: torch.Tensor) -> None:
    for x in images:
        if x.dtype != torch.uint8:
            raise ValueError(f"pyiqa-convention metrics take the 8-bit images (uint8), got {x.dtype}")


def yiq_luma(images: torch.Tensor, rounded: bool = True) -> torch.Tensor:
    """uint8 RGB [B,3,H,W] -> float64 [B,1,H,W] YIQ luma on the 0-255 scale, as pyiqa's float32 chain (fused)."""
    _check_uint8(images)
    return _yiq(images, rounded).unsqueeze(1)


def ssim_yiq(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """pyiqa's default `ssim` of uint8 RGB images, float64 [B]."""
    _check_uint8(out, gt)
    cfg = SsimConfig(nonnegative_cs=True)
    return per_image(out, gt, lambda a, b: ssim_numpy(_yiq(a, True)[None], _yiq(b, True)[None], cfg),
                     lambda a, b: ssim_torch(yiq_luma(a), yiq_luma(b), cfg))


def psnr_01(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """pyiqa's default `psnr` of uint8 RGB images (RGB in [0, 1], eps 1e-8), float64 [B]."""
    return 10.0 * torch.log10(1.0 / (mse(out, gt) / 255.0**2 + PSNR_EPS))


def psnr_yiq_01(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """pyiqa's `psnry`: unrounded YIQ luma in [0, 1], eps 1e-8, float64 [B]."""
    _check_uint8(out, gt)
    y = lambda a: _yiq(a, False) / 255.0  # noqa: E731
    error = per_image(out, gt, lambda a, b: float(((y(a) - y(b)) ** 2).mean()),
                      lambda a, b: (y(a) - y(b)).square().flatten(1).mean(dim=1))
    return 10.0 * torch.log10(1.0 / (error + PSNR_EPS))


SSIM_YIQ = MetricSpec(
    name="ssim", spec="ssim/yiq-y-round-gauss11-s1.5-valid-relu-f64/pyiqa-v1", kind="full-reference",
    higher_is_better=True, build=stateless(lambda b: ssim_yiq(b.out, needs_gt(b))),
    description="pyiqa default `ssim`: rounded YIQ Y, 11x11 Gaussian sigma 1.5, valid, cs clamped at 0",
)
PSNR_01 = MetricSpec(
    name="psnr", spec="psnr/rgb-01-eps1e-8/pyiqa-v1", kind="full-reference", higher_is_better=True,
    build=stateless(lambda b: psnr_01(b.out, needs_gt(b))),
    description="pyiqa default `psnr`: RGB in [0, 1], 10 log10(1 / (mse + 1e-8)), per image",
)
PSNR_Y_YIQ = MetricSpec(
    name="psnr_y", spec="psnr_y/yiq-01-eps1e-8/pyiqa-v1", kind="full-reference", higher_is_better=True,
    build=stateless(lambda b: psnr_yiq_01(b.out, needs_gt(b))),
    description="pyiqa `psnry`: unrounded YIQ Y in [0, 1], eps 1e-8, per image",
)
