"""The synthetic face degradations of the literature, seeded per image and replayable from stored parameters.

Two pipelines, both the FFHQ degradation of GFPGAN's `FFHQDegradationDataset` (as reused by DifFace and
PMRF), re-implemented on numpy/OpenCV without basicsr:

  h-flip -> blur (Gaussian kernel, isotropic or anisotropic) -> downsample by s (cv2 INTER_LINEAR to
  int(w // s)) -> Gaussian colour noise, clip -> JPEG (cv2, integer quality) -> resize back (INTER_LINEAR)
  -> [gfpgan: RGB shift] -> gray with probability -> [gfpgan: brightness/contrast/saturation/hue jitter]
  -> LQ rounded to 8 bit.

`difface` is the PMRF/DifFace training degradation (DifFace `configs/training/swinir_ffhq512.yaml`, PMRF
`utils/create_degradation.py`); `gfpgan` is GFPGAN's (`options/train_gfpgan_v1.yml`). As in the published
code the image is processed in OpenCV's BGR float32 [0,1] layout (JPEG's colour transform assumes BGR).

Every random draw is made once by `sample_params` and recorded in a `DegradationParams`; `apply` is a pure
function of (image, params), and the noise comes from a generator seeded by the recorded `noise_seed`, so
stored parameters reproduce an LQ image byte for byte. `degrade` derives the draws from (seed, key) by
SHA-256, so an image's degradation does not depend on order, batch composition or worker count.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

PUBLISHED_SIZE = 512


@dataclass(frozen=True, kw_only=True)
class DegradationConfig:
    """Ranges of one pipeline at resolution `size`. Uniform ranges are (low, high); noise on the 0-255 scale.

    `scaled_to(size)` adapts the published 512 values to other resolutions by treating a smaller image as
    the same face seen at size/512: lengths scale, per-pixel quantities do not.
      - blur sigma range x r (r = size / self.size), so the blur covers the same fraction of the face;
      - kernel size: the published 41 is a radius of 20 px (about 1.3 sigma at the largest sigma); the
        radius scales by r, rounded up, at least 1 (41 -> 7 at 64 px). The kernel stays the same truncated
        Gaussian relative to the face, and no 41x41 kernel is built for a 64 px image;
      - downsample range (low, high) -> (low, max(low, high x r)): the largest factor shrinks with the
        image so the smallest intermediate image keeps its published size in pixels (512/32 = 16 px for
        difface, 512/8 = 64 px for gfpgan), instead of collapsing a 64 px face to 2 px. The low end (0.8, a
        mild up-and-down resampling) is kept;
      - noise sigma, JPEG quality and the probabilities are per pixel or per image and stay as published.
    """

    name: str
    blur_sigma: tuple[float, float]
    downsample: tuple[float, float]
    jpeg_quality: tuple[int, int]
    gray_gt: bool  # gray LQ comes with a gray GT (difface) or a colour GT (gfpgan: it learns to colourise)
    shift_prob: float = 0.0  # per-channel RGB shift of the LQ (gfpgan `color_jitter`)
    jitter_prob: float = 0.0  # brightness/contrast/saturation/hue of the LQ (gfpgan `color_jitter_pt`)
    kernel_size: int = 41
    iso_prob: float = 0.5  # the rest is anisotropic
    noise_sigma: tuple[float, float] = (0.0, 20.0)
    gray_prob: float = 0.01
    hflip_prob: float = 0.5
    shift: float = 20.0  # on the 0-255 scale
    brightness: tuple[float, float] = (0.5, 1.5)
    contrast: tuple[float, float] = (0.5, 1.5)
    saturation: tuple[float, float] = (0.0, 1.5)
    hue: tuple[float, float] = (-0.1, 0.1)
    size: int = PUBLISHED_SIZE

    def scaled_to(self, size: int) -> DegradationConfig:
        """This pipeline for `size` x `size` images (see the class docstring for the rule)."""
        if size < 8:
            raise ValueError(f"degradation size must be at least 8 px, got {size}")
        r = size / self.size
        radius = max(1, math.ceil((self.kernel_size - 1) / 2 * r))
        low, high = self.downsample
        return dataclasses.replace(
            self, size=size, kernel_size=2 * radius + 1,
            blur_sigma=(self.blur_sigma[0] * r, self.blur_sigma[1] * r),
            downsample=(low, max(low, high * r)))


@dataclass(frozen=True, kw_only=True)
class DifFaceConfig(DegradationConfig):
    name: str = "difface"
    blur_sigma: tuple[float, float] = (0.1, 15.0)
    downsample: tuple[float, float] = (0.8, 32.0)
    jpeg_quality: tuple[int, int] = (30, 100)
    gray_gt: bool = True


@dataclass(frozen=True, kw_only=True)
class GFPGANConfig(DegradationConfig):
    name: str = "gfpgan"
    blur_sigma: tuple[float, float] = (0.1, 10.0)
    downsample: tuple[float, float] = (0.8, 8.0)
    jpeg_quality: tuple[int, int] = (60, 100)
    gray_gt: bool = False
    shift_prob: float = 0.3
    jitter_prob: float = 0.3


DIFFACE = DifFaceConfig()
GFPGAN = GFPGANConfig()
PIPELINES: dict[str, DegradationConfig] = {c.name: c for c in (DIFFACE, GFPGAN)}

JITTER_OPS = "bcsh"  # brightness, contrast, saturation, hue: `jitter_order` is a permutation of these


@dataclass(frozen=True)
class DegradationParams:
    """Every draw of one image's degradation (plus the two config values `apply` needs), flat for Parquet."""

    pipeline: str
    size: int  # the square HQ side these were drawn for
    kernel_size: int
    flip: bool
    kernel: str  # "iso" | "aniso"
    sigma_x: float
    sigma_y: float
    rotation: float  # radians; 0 for iso
    scale: float  # downsample factor
    noise_sigma: float  # on the 0-255 scale
    noise_seed: int
    jpeg_quality: int
    color_shift: bool
    shift_r: float  # on the 0-1 scale; 0 when not shifted
    shift_g: float
    shift_b: float
    gray: bool
    gray_gt: bool
    jitter_order: str  # "" when not jittered
    brightness: float
    contrast: float
    saturation: float
    hue: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> DegradationParams:
        """Inverse of `to_dict`; accepts numpy scalars (a Parquet row) and ignores extra columns (image_id)."""
        fields = dataclasses.fields(cls)
        missing = [f.name for f in fields if f.name not in row]
        if missing:
            raise KeyError(f"degradation parameters lack {', '.join(missing)}; "
                           "they must come from DegradationParams.to_dict (e.g. a params.parquet written by `degrade`)")
        cast = {"str": str, "int": int, "float": float, "bool": bool}
        return cls(**{f.name: cast[f.type](row[f.name]) for f in fields})


def sample_params(config: DegradationConfig, rng: np.random.Generator, size: int) -> DegradationParams:
    """Draw one image's degradation from `config` for a `size` x `size` image.

    `size` is recorded so that `apply` refuses an image of another size. The draws are made in a fixed
    order, so a generator state always maps to the same parameters: reordering them would change the LQ
    images of every (seed, key) ever made.
    """
    flip = bool(rng.random() < config.hflip_prob)
    iso = bool(rng.random() < config.iso_prob)
    sigma_x = float(rng.uniform(*config.blur_sigma))
    if iso:
        sigma_y, rotation = sigma_x, 0.0
    else:
        sigma_y = float(rng.uniform(*config.blur_sigma))
        rotation = float(rng.uniform(-math.pi, math.pi))
    scale = float(rng.uniform(*config.downsample))
    noise_sigma = float(rng.uniform(*config.noise_sigma))
    noise_seed = int(rng.integers(2**63))
    jpeg_quality = int(rng.uniform(*config.jpeg_quality))
    color_shift = bool(rng.random() < config.shift_prob)
    shift = rng.uniform(-config.shift, config.shift, 3) / 255.0 if color_shift else np.zeros(3)
    gray = bool(rng.random() < config.gray_prob)
    order, factors = "", (1.0, 1.0, 1.0, 0.0)
    if rng.random() < config.jitter_prob:
        order = "".join(JITTER_OPS[i] for i in rng.permutation(4))
        factors = tuple(float(rng.uniform(*r)) for r in (config.brightness, config.contrast, config.saturation, config.hue))
    return DegradationParams(
        pipeline=config.name, size=size, kernel_size=config.kernel_size, flip=flip, kernel="iso" if iso else "aniso",
        sigma_x=sigma_x, sigma_y=sigma_y, rotation=rotation, scale=scale, noise_sigma=noise_sigma,
        noise_seed=noise_seed, jpeg_quality=jpeg_quality, color_shift=color_shift,
        shift_r=float(shift[0]), shift_g=float(shift[1]), shift_b=float(shift[2]), gray=gray, gray_gt=config.gray_gt,
        jitter_order=order, brightness=factors[0], contrast=factors[1], saturation=factors[2], hue=factors[3])


def blur_kernel(kernel_size: int, sigma_x: float, sigma_y: float, rotation: float) -> np.ndarray:
    """Normalised Gaussian with covariance R diag(sx^2, sy^2) R^T on an integer grid centred at 0 (x = column)."""
    c, s = math.cos(rotation), math.sin(rotation)
    cov = np.array([[c, -s], [s, c]]) @ np.diag([sigma_x**2, sigma_y**2]) @ np.array([[c, s], [-s, c]])
    inv = np.linalg.inv(cov)
    ax = np.arange(kernel_size, dtype=np.float64) - kernel_size // 2
    xx, yy = np.meshgrid(ax, ax)
    kernel = np.exp(-0.5 * (inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy))
    return kernel / kernel.sum()


def add_noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Add N(0, (sigma/255)^2) per pixel and channel (float32 draws from `seed`), then clip to [0,1]."""
    noise = np.random.default_rng(seed).standard_normal(img.shape, dtype=np.float32)
    return np.clip(img + noise * np.float32(sigma) / np.float32(255.0), 0.0, 1.0)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip a BGR float [0,1] image through OpenCV's JPEG codec at an integer quality."""
    img8 = np.rint(np.clip(img, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img8, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV JPEG encoding failed at quality {quality}")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) / np.float32(255.0)


def _to_gray(bgr: np.ndarray) -> np.ndarray:
    return np.repeat(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None], 3, axis=2)


_LUMA = np.array([0.2989, 0.587, 0.114], dtype=np.float32)  # torchvision's rgb_to_grayscale weights


def _blend(img: np.ndarray, other: np.ndarray | float, ratio: float) -> np.ndarray:
    return np.clip(np.float32(ratio) * img + np.float32(1.0 - ratio) * other, 0.0, 1.0)


def _hue_shift(rgb: np.ndarray, shift: float) -> np.ndarray:
    """RGB -> HSV, rotate the hue by `shift` turns, HSV -> RGB (the hexcone model torchvision uses)."""
    maxc, minc = rgb.max(axis=2), rgb.min(axis=2)
    cr = maxc - minc
    flat = cr == 0
    sat = cr / np.where(flat, 1.0, maxc)
    rc, gc, bc = np.moveaxis((maxc[..., None] - rgb) / np.where(flat, 1.0, cr)[..., None], 2, 0)
    r, g = rgb[..., 0], rgb[..., 1]
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = (np.fmod(h / 6.0 + 1.0, 1.0) + shift) % 1.0
    sector = np.floor(h * 6.0)
    f = h * 6.0 - sector
    v = maxc
    p, q, t = (np.clip(v * (1.0 - x), 0.0, 1.0) for x in (sat, sat * f, sat * (1.0 - f)))
    sector = sector.astype(np.int64) % 6
    out = [np.choose(sector, table) for table in ((v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))]
    return np.stack(out, axis=2).astype(np.float32)


def _jitter(rgb: np.ndarray, params: DegradationParams) -> np.ndarray:
    """Brightness, contrast, saturation and hue in the recorded order: GFPGAN's `color_jitter_pt`
    (torchvision's adjust_* on a float image), in numpy."""
    ops = {
        "b": lambda x: _blend(x, 0.0, params.brightness),
        "c": lambda x: _blend(x, np.float32((x @ _LUMA).mean()), params.contrast),
        "s": lambda x: _blend(x, (x @ _LUMA)[..., None], params.saturation),
        "h": lambda x: _hue_shift(x, params.hue),
    }
    for op in params.jitter_order:
        rgb = ops[op](rgb)
    return rgb


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * np.float32(255.0)), 0, 255).astype(np.uint8)


def apply(hq: np.ndarray, params: DegradationParams) -> tuple[np.ndarray, np.ndarray]:
    """Degrade a uint8 RGB [H,W,3] image with recorded parameters; returns (lq, gt), both uint8 RGB.

    The GT is the (flipped, and for difface possibly gray) HQ image the LQ was made from.
    """
    if hq.dtype != np.uint8 or hq.ndim != 3 or hq.shape[2] != 3:
        raise ValueError(f"degradation expects a uint8 RGB image [H,W,3], got {hq.dtype} {hq.shape}")
    if hq.shape[:2] != (params.size, params.size):
        raise ValueError(f"these degradation parameters were drawn for {params.size}x{params.size} images, "
                         f"got {hq.shape[1]}x{hq.shape[0]}")
    rgb = hq[:, ::-1] if params.flip else hq
    gt = rgb[..., ::-1].astype(np.float32) / np.float32(255.0)  # BGR float, as basicsr reads images
    kernel = blur_kernel(params.kernel_size, params.sigma_x, params.sigma_y, params.rotation)
    lq = cv2.filter2D(gt, -1, kernel)
    h, w = gt.shape[:2]
    small = (max(1, int(w // params.scale)), max(1, int(h // params.scale)))
    lq = cv2.resize(lq, small, interpolation=cv2.INTER_LINEAR)
    lq = add_noise(lq, params.noise_sigma, params.noise_seed)
    lq = jpeg(lq, params.jpeg_quality)
    lq = cv2.resize(lq, (w, h), interpolation=cv2.INTER_LINEAR)
    if params.color_shift:
        shift_bgr = np.array([params.shift_b, params.shift_g, params.shift_r], dtype=np.float32)
        lq = np.clip(lq + shift_bgr, 0.0, 1.0)
    if params.gray:
        lq = _to_gray(lq)
        if params.gray_gt:
            gt = _to_gray(gt)
    lq = np.ascontiguousarray(lq[..., ::-1])
    if params.jitter_order:
        lq = _jitter(lq, params)
    gt_out = _to_uint8(gt[..., ::-1]) if params.gray and params.gray_gt else np.ascontiguousarray(rgb)
    return _to_uint8(lq), gt_out


def key_seed(seed: int, key: str) -> int:
    """The 63-bit seed of one image's degradation: a pure function of (seed, key), not of Python's hash()."""
    digest = hashlib.sha256(f"degrade\x1f{seed}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def degrade(hq: np.ndarray, config: DegradationConfig, seed: int, key: str) -> tuple[np.ndarray, np.ndarray, DegradationParams]:
    """Degrade one square uint8 RGB image; all draws derive from (seed, key), e.g. key = image_id."""
    if hq.ndim != 3 or hq.shape[0] != hq.shape[1]:
        raise ValueError(f"degradation expects a square [S,S,3] image (an aligned face crop), got shape {hq.shape}")
    params = sample_params(config, np.random.default_rng(key_seed(seed, key)), hq.shape[0])
    lq, gt = apply(hq, params)
    return lq, gt, params
