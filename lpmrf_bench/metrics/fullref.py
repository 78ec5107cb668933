"""PSNR, SSIM and MSE as the face-restoration literature computes them (basicsr/MATLAB conventions).

Per image, float64, on the 0-255 scale, no border crop; SSIM with an 11x11 Gaussian window (sigma 1.5),
"valid" filtering (no padding) and the usual constants, averaged over channels. The `_y` variants use
the limited-range BT.601 luma of basicsr's `to_y_channel` (Y = 16 + 65.481 R + 128.553 G + 24.966 B, with
RGB in [0,1], left unrounded), which differs from pyiqa's YIQ luma by more than 1 dB.

Speed (issue 19) without touching the values: on the CPU each image is scored alone, so float64
temporaries stay a few MB (glibc reuses them; batch-sized ones are fresh pages every call), SSIM's blur is
OpenCV's separable float64 filter (torch's float64 grouped conv2d on CPU is a slow fallback), and the
squared error of 8-bit images is summed exactly in integers. On accelerators the batch stays on the
device in float64 (`ssim_torch`); both paths agree to ~1e-15.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from lpmrf_bench.metrics.base import MetricBatch, MetricSpec, mean_with_infinities, stateless

_Y_WEIGHTS = (65.481, 128.553, 24.966)
Array = np.ndarray | torch.Tensor  # the SSIM map takes either: numpy on the CPU, torch on devices


def luma_bt601(image: torch.Tensor) -> torch.Tensor:
    """uint8/float [B,3,H,W] on the 0-255 scale -> float64 [B,1,H,W] limited-range Y on the 0-255 scale."""
    rgb = image.to(torch.float64) / 255.0
    w = torch.tensor(_Y_WEIGHTS, dtype=torch.float64, device=image.device).view(1, 3, 1, 1)
    return (rgb * w).sum(dim=1, keepdim=True) + 16.0


_Y_PER_LEVEL = np.array(_Y_WEIGHTS) / 255.0  # the luma weights per 8-bit level, for the CPU kernels


def _luma_np(image: np.ndarray) -> np.ndarray:
    """[3,H,W] RGB on the 0-255 scale -> float64 [H,W] limited-range Y (`luma_bt601` of one CPU image).

    einsum, not a BLAS matrix-vector product: that one is 30x slower here when the cores are contended."""
    return np.einsum("c,chw->hw", _Y_PER_LEVEL, image.astype(np.float64)) + 16.0


def _psnr_y_np(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of the luma of one CPU pair; the +16 cancels, so Y(a) - Y(b) is the weighted RGB difference."""
    diff = np.einsum("c,chw->hw", _Y_PER_LEVEL, np.subtract(a, b, dtype=np.float64))
    with np.errstate(divide="ignore"):  # identical images: +inf, as `psnr`
        return float(10.0 * np.log10(255.0**2 / np.einsum("hw,hw->", diff, diff) * diff.size))


def _mse_np(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of one CPU image pair; of 8-bit pairs exactly (the integer sum, one division)."""
    if a.dtype == b.dtype == np.uint8:
        diff = np.subtract(a, b, dtype=np.int64).ravel()
        return int(np.dot(diff, diff)) / a.size
    return float(np.square(a.astype(np.float64) - b.astype(np.float64)).mean())


def _mse_torch(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    if out.dtype == gt.dtype == torch.uint8:  # exact: the integer sum, then one float64 division
        diff = out.to(torch.int32) - gt.to(torch.int32)
        return (diff * diff).flatten(1).sum(dim=1).to(torch.float64) / diff[0].numel()
    return (out.to(torch.float64) - gt.to(torch.float64)).square().flatten(1).mean(dim=1)


def cpu_kernels_for(device: torch.device) -> bool:
    """Whether images on `device` are scored by the numpy/OpenCV kernels (tests force the device kernels)."""
    return device.type == "cpu"


def per_image(out: torch.Tensor, gt: torch.Tensor, cpu_kernel: Callable[[np.ndarray, np.ndarray], float],
              device_kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """float64 [B]: on the CPU, `cpu_kernel` on one numpy image pair at a time (temporaries of a few MB, which
    malloc reuses; batch-sized float64 ones are fresh pages every call); elsewhere `device_kernel` on the batch."""
    if not cpu_kernels_for(out.device):
        return device_kernel(out, gt)
    pairs = zip(out.detach().numpy(), gt.detach().numpy())
    return torch.tensor([cpu_kernel(a, b) for a, b in pairs], dtype=torch.float64)


def mse(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error on the 0-255 scale, float64 [B]."""
    return per_image(out, gt, _mse_np, _mse_torch)


def psnr(out: torch.Tensor, gt: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Per-image PSNR in dB, float64 [B]; +inf for identical images (as scikit-image)."""
    return 10.0 * torch.log10(data_range**2 / mse(out, gt))


def psnr_y(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """PSNR of the limited-range BT.601 luma of RGB images on the 0-255 scale, float64 [B]."""
    return per_image(out, gt, _psnr_y_np, lambda a, b: psnr(luma_bt601(a), luma_bt601(b)))


def gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """The normalised 1-D Gaussian whose outer product is the 2-D SSIM window."""
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


@dataclass(frozen=True)
class SsimConfig:
    """The SSIM conventions: data range, window, and pyiqa's clamp of the contrast-structure term at 0."""

    data_range: float = 255.0
    window: int = 11
    sigma: float = 1.5
    nonnegative_cs: bool = False

    @property
    def constants(self) -> tuple[float, float]:
        return (0.01 * self.data_range) ** 2, (0.03 * self.data_range) ** 2


def _ssim_map_mean(mu_x: Array, mu_y: Array, xx: Array, yy: Array, xy: Array, cfg: SsimConfig) -> Array:
    """Mean over the last two axes of the SSIM map, from the five blurred planes."""
    c1, c2 = cfg.constants
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    if cfg.nonnegative_cs:
        cs = cs.clip(0)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1) * cs
    return ssim_map.mean(axis=(-2, -1))


def ssim_torch(out: torch.Tensor, gt: torch.Tensor, cfg: SsimConfig = SsimConfig()) -> torch.Tensor:
    """SSIM of a batch on its device in float64, two 1-D valid grouped convolutions per blur: the GPU path."""
    x, y = out.to(torch.float64), gt.to(torch.float64)
    c = x.shape[1]
    g = gaussian_window(cfg.window, cfg.sigma, x.device)
    rows = g.view(1, 1, 1, cfg.window).expand(c, 1, 1, cfg.window)
    cols = g.view(1, 1, cfg.window, 1).expand(c, 1, cfg.window, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, rows, groups=c), cols, groups=c)

    return _ssim_map_mean(blur(x), blur(y), blur(x * x), blur(y * y), blur(x * y), cfg).mean(dim=1)


MAP_ROWS = 16  # rows of the SSIM map computed at once: its ~10 temporaries then stay in the L2 cache
_WORKSPACE = threading.local()


def _planes(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Eight float64 [H,W] planes reused from call to call (per thread): multi-MB arrays made afresh cost
    page faults every time, which made SSIM several times slower than its arithmetic."""
    planes = getattr(_WORKSPACE, "planes", None)
    if planes is None or planes.shape[1:] != shape:
        planes = _WORKSPACE.planes = np.empty((8, *shape))
    return list(planes)


def ssim_numpy(a: np.ndarray, b: np.ndarray, cfg: SsimConfig = SsimConfig()) -> float:
    """SSIM of one CPU image pair [C,H,W] (channel mean), plane by plane with OpenCV's separable float64
    filter, cropped to the valid region: the CPU path (torch's float64 grouped conv2d on CPU is a slow fallback)."""
    g = gaussian_window(cfg.window, cfg.sigma, torch.device("cpu")).numpy()
    r = cfg.window // 2
    x, y, product, *blurred = _planes(a.shape[1:])

    def blur(t: np.ndarray, dst: np.ndarray) -> None:
        cv2.sepFilter2D(t, cv2.CV_64F, g, g, dst=dst, borderType=cv2.BORDER_REFLECT)

    values = []
    for channel_a, channel_b in zip(a, b):
        np.copyto(x, channel_a)
        np.copyto(y, channel_b)
        blur(x, blurred[0])
        blur(y, blurred[1])
        for (p, q), dst in zip(((x, x), (y, y), (x, y)), blurred[2:]):
            blur(np.multiply(p, q, out=product), dst)
        valid = [plane[r:-r, r:-r] for plane in blurred]
        rows = valid[0].shape[0]
        bands = [(_ssim_map_mean(*(v[i : i + MAP_ROWS] for v in valid), cfg), min(MAP_ROWS, rows - i))
                 for i in range(0, rows, MAP_ROWS)]
        values.append(sum(mean * n for mean, n in bands) / rows)
    return float(np.mean(values))


def ssim(out: torch.Tensor, gt: torch.Tensor, data_range: float = 255.0, window: int = 11, sigma: float = 1.5,
         nonnegative_cs: bool = False) -> torch.Tensor:
    """Per-image SSIM, float64 [B], averaged over channels; Gaussian window, valid region only.

    `nonnegative_cs` clamps the contrast-structure term at 0 before the product (pyiqa's variant).
    """
    h, w = out.shape[-2:]
    if h < window or w < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {h}x{w}")
    cfg = SsimConfig(data_range, window, sigma, nonnegative_cs)
    return per_image(out, gt, lambda a, b: ssim_numpy(a, b, cfg), lambda a, b: ssim_torch(a, b, cfg))


def ssim_y(out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """SSIM of the limited-range BT.601 luma of RGB images on the 0-255 scale, float64 [B]."""
    return per_image(out, gt, lambda a, b: ssim_numpy(_luma_np(a)[None], _luma_np(b)[None]),
                     lambda a, b: ssim_torch(luma_bt601(a), luma_bt601(b)))


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
    build=stateless(lambda b: psnr_y(b.out, needs_gt(b))),
    description="PSNR on limited-range BT.601 Y (basicsr to_y_channel / MATLAB); identical images give +inf",
    aggregate=mean_with_infinities,
)
SSIM_Y = MetricSpec(
    name="ssim_y", spec="ssim_y/ycbcr601-limited-gauss11-s1.5-valid-f64/basicsr-v1", kind="full-reference",
    higher_is_better=True,
    build=stateless(lambda b: ssim_y(b.out, needs_gt(b))),
    description="SSIM on limited-range BT.601 Y (basicsr to_y_channel / MATLAB)",
)
MSE = MetricSpec(
    name="mse", spec="mse/rgb-255-f64/pmrf-v1", kind="full-reference", higher_is_better=False,
    build=stateless(lambda b: mse(b.out, needs_gt(b))),
    description="mean squared error on RGB, 0-255 scale, per image",
)
