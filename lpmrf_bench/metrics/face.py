"""Face metrics of the PMRF protocol: identity angle `deg` (ArcFace) and landmark distance `lmd` (FAN).

Both reproduce the published evaluation scripts (PMRF `evaluation/calculate_cos_dist.py` and
`calculate_landmark_distance.py`, adopted from VQFR), which read saved PNGs with OpenCV. Preprocessing that
decides numbers runs on the CPU with OpenCV, exactly as there; the networks run batched on the run's device.

- deg: `cv2.imread(png, IMREAD_GRAYSCALE)` yields libpng's RGB->gray conversion, BT.601 weights in 15-bit
  fixed point, TRUNCATED (not `cv2.cvtColor`'s rounding, which differs by 1 on ~40% of pixels); then
  `cv2.resize` to 128x128 INTER_LINEAR, (x - 127.5) / 127.5. The angle between the GT and output embeddings
  is in degrees. The set value is the mean over pairs of at least 1 degree: pairs under 1 degree count as
  identical and are left out (`n` says how many entered).
- lmd: `cv2.resize` to 256x256 (INTER_LINEAR), RGB / 255, FAN; landmarks from the last hourglass by the
  published point rule (`heatmaps_to_points`, quirks included), in pixels of the input image; the value is
  the mean L2 distance over the 98 points.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from lpmrf_bench.metrics.base import MetricBatch, MetricFn, MetricSpec, SetValue
from lpmrf_bench.models.arcface import INPUT_SIZE as ARCFACE_SIZE
from lpmrf_bench.models.arcface import ArcFaceResNet18, load_arcface
from lpmrf_bench.models.fan import FAN, HEATMAP_SIZE, NUM_LANDMARKS, heatmaps_to_points, load_fan
from lpmrf_bench.models.fan import INPUT_SIZE as FAN_SIZE
from lpmrf_bench.published import ARCFACE_R18, FAN_WFLW_4HG
from lpmrf_bench.weights import resolve

IDENTICAL_BELOW_DEG = 1.0
_PNG_GRAY = (9797, 19234, 3737)  # libpng: int(0.299 * 32768), int(0.587 * 32768), and the rest of 32768


def _check_rgb8(images: torch.Tensor) -> torch.Tensor:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"face metrics take uint8 RGB images [B,3,H,W], got {images.dtype} {tuple(images.shape)}")
    return images.cpu()


def _float32(device: torch.device) -> torch.autocast:
    """The published scripts run in float32; an argmax or an angle must not inherit a caller's autocast."""
    return torch.autocast(device.type, enabled=False)


def png_gray(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [B,3,H,W] -> uint8 [B,H,W]: the gray that `cv2.imread(png, IMREAD_GRAYSCALE)` returns.

    libpng's `png_set_rgb_to_gray` for 8-bit pixels without a gamma chunk: 15-bit weights, truncated, and
    pixels with R == G == B passed through unchanged. (A PNG carrying a gAMA or sRGB chunk is converted
    gamma-aware by libpng instead, up to 13 levels apart; cv2.imwrite writes neither chunk.)
    """
    rgb = _check_rgb8(images).to(torch.int32)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    mixed = (_PNG_GRAY[0] * r + _PNG_GRAY[1] * g + _PNG_GRAY[2] * b) >> 15
    gray = torch.where((r == g) & (g == b), r, mixed)
    return gray.to(torch.uint8)


def arcface_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [B,3,H,W] -> float32 [B,1,128,128] in [-1,1] on the CPU, as the published `load_image`."""
    gray = png_gray(images).numpy()
    small = [cv2.resize(g, (ARCFACE_SIZE, ARCFACE_SIZE), interpolation=cv2.INTER_LINEAR) for g in gray]
    x = torch.from_numpy(np.stack(small)).to(torch.float32).unsqueeze(1)
    return (x - 127.5) / 127.5


def fan_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [B,3,H,W] -> float32 [B,3,256,256] RGB in [0,1] on the CPU, as the published `get_landmarks`.

    cv2.resize treats channels independently, so resizing RGB equals resizing the BGR file then flipping.
    """
    hwc = _check_rgb8(images).permute(0, 2, 3, 1).contiguous().numpy()
    small = [cv2.resize(im, (FAN_SIZE, FAN_SIZE)) for im in hwc]
    return torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).to(torch.float32) / 255.0


def angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle in degrees between rows of a and b, float64 [B]; exactly 0 for identical rows.

    The published arccos(cos) is ill-conditioned near 0 (and NaN when rounding pushes cos above 1);
    2 atan2(|u - v|, |u + v|) of the unit vectors is the same angle, stable everywhere.
    """
    u = a.to(torch.float64) / a.to(torch.float64).norm(dim=1, keepdim=True)
    v = b.to(torch.float64) / b.to(torch.float64).norm(dim=1, keepdim=True)
    return torch.rad2deg(2 * torch.atan2((u - v).norm(dim=1), (u + v).norm(dim=1)))


@torch.no_grad()
def identity_angle(model: ArcFaceResNet18, out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-image ArcFace angle between output and ground truth (uint8 RGB [B,3,H,W]), float64 [B] on the CPU.

    Outputs and ground truths go through the network in two calls of the same shape, so an output equal to its
    ground truth meets the same arithmetic and scores exactly 0 (one call of 2B may round rows differently).
    """
    device = next(model.parameters()).device
    with _float32(device):
        emb_out, emb_gt = (model(arcface_input(images).to(device)).float().cpu() for images in (out, gt))
    return angle_deg(emb_out, emb_gt)


@torch.no_grad()
def landmarks(model: FAN, images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [B,3,H,W] -> float64 [B,98,2] (x, y) landmarks in pixels of the input images, on the CPU."""
    device = next(model.parameters()).device
    with _float32(device):
        heatmaps = model(fan_input(images).to(device)).float().cpu()
    return heatmaps_to_points(heatmaps[:, :NUM_LANDMARKS], (images.shape[2], images.shape[3]))


def landmark_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over points of the L2 distance between landmark sets [B,N,2] -> float64 [B]."""
    return (a.to(torch.float64) - b.to(torch.float64)).square().sum(dim=-1).sqrt().mean(dim=-1)


def mean_excluding_identical(values: np.ndarray, threshold: float = IDENTICAL_BELOW_DEG) -> SetValue:
    """The PMRF/VQFR set value of `deg`: mean over pairs of at least `threshold` degrees."""
    finite = values[np.isfinite(values)]
    kept = finite[finite >= threshold]
    return SetValue(float(kept.mean()) if kept.size else float("nan"), int(kept.size))


def _pair(batch: MetricBatch, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    if batch.gt is None:
        raise ValueError(f"{metric} compares an output with its ground truth; this set has none (LQ-only)")
    if batch.gt.shape != batch.out.shape:
        raise ValueError(f"{metric}: output {tuple(batch.out.shape)} and ground truth {tuple(batch.gt.shape)} differ")
    return batch.out, batch.gt


def _build_deg(device: torch.device, weights_dir: str | None) -> MetricFn:
    model = load_arcface(resolve(ARCFACE_R18, weights_dir=weights_dir), device)
    return lambda batch: identity_angle(model, *_pair(batch, "deg"))


def _build_lmd(device: torch.device, weights_dir: str | None) -> MetricFn:
    model = load_fan(resolve(FAN_WFLW_4HG, weights_dir=weights_dir), device)

    def lmd(batch: MetricBatch) -> torch.Tensor:
        out, gt = _pair(batch, "lmd")
        return landmark_distance(landmarks(model, out), landmarks(model, gt))

    return lmd


DEG = MetricSpec(
    name="deg", spec="deg/arcface-r18/pmrf-v1", kind="full-reference", higher_is_better=False,
    build=_build_deg, weights=(ARCFACE_R18,), licence=ARCFACE_R18.licence, aggregate=mean_excluding_identical,
    description="ArcFace ResNet-18 angle (degrees) between output and GT; gray as cv2.imread of a PNG, "
                f"INTER_LINEAR 128x128; set mean over pairs >= {IDENTICAL_BELOW_DEG:g} degree (PMRF/VQFR)",
)
LMD = MetricSpec(
    name="lmd", spec="lmd/fan-wflw98-4hg/pmrf-v1", kind="full-reference", higher_is_better=False,
    build=_build_lmd, weights=(FAN_WFLW_4HG,), licence=FAN_WFLW_4HG.licence,
    description=f"mean L2 over {NUM_LANDMARKS} FAN landmarks (pixels of the input image) between output and GT; "
                f"cv2 resize to {FAN_SIZE}, {HEATMAP_SIZE}x{HEATMAP_SIZE} heatmaps, published point rule (PMRF/VQFR)",
)
