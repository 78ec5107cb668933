"""NIQE with the official MATLAB model, as PMRF (basicsr) and as Latent-PMRF (pyiqa) computed it.

PMRF's `evaluation/calculate_niqe.py` calls basicsr's `calculate_niqe(img, 0, convert_to='y')`, a port of
the MATLAB release (Mittal et al. 2013): Y of BT.601 limited-range YCbCr rounded to integers, no border
crop, 96x96 blocks without overlap, local normalisation with the release's 7x7 Gaussian (replicate
borders), 18 AGGD features per block at two scales (the second after MATLAB's antialiased bicubic
`imresize` by 1/2), and the distance of the image's multivariate Gaussian to the pristine model.

Arithmetic follows basicsr where it decides numbers: the local normalisation runs in float32 as there
(in flat regions its rounding noise IS the signal the block features see); the MATLAB `imresize` and
the features run in float64. Measured against basicsr's own code on five photographs
(tests/reference/niqe_basicsr.*): |difference| <= 1.6e-5, except 3.1e-4 on one with a flat background,
where basicsr's float32 resize noise differs from ours.
The model parameters are vendored from the basicsr sdist (data/niqe_pris_params.npz, see data/NOTICE).

pyiqa's default `niqe` (chaofengc/IQA-PyTorch, `archs/niqe_arch.py`) is the same algorithm with three
conventions of its own: the luma is Y of YIQ (0.299, 0.587, 0.114, float32, rounded; nearly the MATLAB
release's own `rgb2gray` in `computequality.m`), the local normalisation runs in float64, and its 7x7
window is `fspecial(7, 7/6)` rounded to float32, whose sum is 1 + 1.1e-8: in flat regions that offset, not
rounding noise, is what the blocks see. On seven photographs the luma alone moves NIQE by 0.02-0.51
(mostly 0.05-0.15) and, where a photograph has flat regions, the arithmetic by up to 0.06: hence a
separate spec. Against pyiqa 0.1.16's own code fed the vendored parameters (tests/reference/niqe_pyiqa.*):
|difference| <= 2e-6 on nine images, 5e-4 on pyiqa's calibration image I19 (flat background), where
pyiqa's float32 `imresize` noise differs from our float64 one. pyiqa downloads its parameters
(`niqe_modelparameters.mat`, the release's model) at run time; that file is not available here, so their
equality with the vendored npz rests on indirect evidence: with the npz, pyiqa's code reproduces the
NIQE values pyiqa publishes for its calibration images (ResultsCalibra) to <= 2.1e-3.
"""
from __future__ import annotations

import atexit
import math
import multiprocessing
import multiprocessing.pool
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from importlib import resources

import numpy as np
import torch
from scipy.ndimage import correlate
from scipy.special import gamma as gamma_fn

from lpmrf_bench.environment import usable_cores
from lpmrf_bench.metrics.base import MetricSpec, stateless
from lpmrf_bench.metrics.pyiqa_conventions import yiq_luma

BLOCK = 96
_AGGD_GRID = np.arange(0.2, 10.001, 0.001)  # the release's search grid for the shape parameter
_AGGD_RATIO = gamma_fn(2 / _AGGD_GRID) ** 2 / (gamma_fn(1 / _AGGD_GRID) * gamma_fn(3 / _AGGD_GRID))
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # horizontal, vertical and the two diagonal neighbours


@dataclass(frozen=True)
class NiqeModel:
    mu: np.ndarray  # [36] pristine feature mean
    cov: np.ndarray  # [36, 36] pristine feature covariance
    window: np.ndarray  # [7, 7] Gaussian used for the local mean and deviation


@lru_cache(maxsize=1)
def pristine_model() -> NiqeModel:
    """The MATLAB release's pristine model, as vendored from basicsr."""
    with resources.files("lpmrf_bench.metrics").joinpath("data/niqe_pris_params.npz").open("rb") as f:
        params = np.load(f)
        return NiqeModel(params["mu_pris_param"].reshape(-1), params["cov_pris_param"], params["gaussian_window"])


@lru_cache(maxsize=1)
def pyiqa_model() -> NiqeModel:
    """The release's model with pyiqa's window: the same Gaussian rounded to float32 (not renormalised)."""
    model = pristine_model()
    return replace(model, window=model.window.astype(np.float32).astype(np.float64))


def _check_rgb8(images: torch.Tensor) -> None:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"NIQE takes uint8 RGB images [B,3,H,W], got {images.dtype} {tuple(images.shape)}")


def niqe_luma(images: torch.Tensor) -> np.ndarray:
    """uint8 RGB [B,3,H,W] -> float64 [B,H,W]: basicsr's NIQE input, limited-range Y rounded to integers.

    The arithmetic follows basicsr's `to_y_channel` on the float32 image step by step (float32 /255, a
    float64 weighted sum in B, G, R order, back to float32, x255, round half to even) so the rounding
    lands on the same integer.
    """
    _check_rgb8(images)
    rgb = images.cpu().numpy().astype(np.float32) / np.float32(255.0)
    r, g, b = (rgb[:, i].astype(np.float64) for i in range(3))
    y = b * 24.966 + g * 128.553 + r * 65.481 + 16.0
    y = (y / 255.0).astype(np.float32) * np.float32(255.0)
    return np.round(y).astype(np.float64)


def niqe_luma_yiq(images: torch.Tensor) -> np.ndarray:
    """uint8 RGB [B,3,H,W] -> float64 [B,H,W]: pyiqa's NIQE input, YIQ Y rounded to integers."""
    _check_rgb8(images)
    return yiq_luma(images)[:, 0].cpu().numpy()


def _cubic(x: np.ndarray) -> np.ndarray:
    """MATLAB's bicubic kernel (Keys, a = -0.5)."""
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def imresize_matrix(n_in: int, scale: float, antialias: bool = True) -> np.ndarray:
    """[ceil(n_in * scale), n_in] matrix of MATLAB `imresize(..., 'bicubic')` along one axis.

    MATLAB's `contributions`: 1-based output x maps to u = x / scale + (1 - 1 / scale) / 2; when shrinking
    with antialiasing the kernel is stretched by 1 / scale; rows are normalised to sum to 1; taps outside
    the image are mirrored with the edge pixel repeated (symmetric padding).
    """
    n_out = math.ceil(n_in * scale)
    stretch = scale if (scale < 1 and antialias) else 1.0
    width = 4.0 / stretch
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = left[:, None] + np.arange(math.ceil(width) + 2)[None, :]  # 1-based input indices
    weights = stretch * _cubic(stretch * (u[:, None] - taps))
    weights /= weights.sum(axis=1, keepdims=True)
    period = (taps.astype(np.int64) - 1) % (2 * n_in)
    index = np.where(period < n_in, period, 2 * n_in - 1 - period)
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.repeat(np.arange(n_out), taps.shape[1]), index.ravel()), weights.ravel())
    return matrix


def imresize(images: np.ndarray, scale: float, antialias: bool = True) -> np.ndarray:
    """MATLAB bicubic `imresize` of [..., H, W] arrays by one scale factor (separable, float64)."""
    rows = imresize_matrix(images.shape[-2], scale, antialias)
    cols = imresize_matrix(images.shape[-1], scale, antialias)
    return rows @ images @ cols.T


def aggd_fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit of each row of [N, n] samples -> (alpha, beta_left, beta_right), each [N].

    The shape alpha is the grid point (0.2:0.001:10) whose generalized-Gaussian ratio is nearest to the
    sample's; rows without negative or positive values give NaN scales (and alpha = 0.2, as the release's
    argmin over NaN does).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        sq = samples**2
        neg, pos = samples < 0, samples > 0
        left_std = np.sqrt((sq * neg).sum(1) / neg.sum(1))
        right_std = np.sqrt((sq * pos).sum(1) / pos.sum(1))
        gammahat = left_std / right_std
        rhat = np.abs(samples).mean(1) ** 2 / sq.mean(1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
        alpha = _AGGD_GRID[np.argmin((_AGGD_RATIO[None, :] - rhatnorm[:, None]) ** 2, axis=1)]
        scale = np.sqrt(gamma_fn(1 / alpha) / gamma_fn(3 / alpha))
    return alpha, left_std * scale, right_std * scale


def block_features(blocks: np.ndarray) -> np.ndarray:
    """[N, h, w] normalised blocks -> [N, 18] NIQE features (Eq. 7-8 of the paper)."""
    n = blocks.shape[0]
    alpha, bl, br = aggd_fit(blocks.reshape(n, -1))
    feats = [alpha, (bl + br) / 2]
    for shift in _SHIFTS:
        pairs = blocks * np.roll(blocks, shift, axis=(1, 2))  # products of neighbours, wrapping inside the block
        alpha, bl, br = aggd_fit(pairs.reshape(n, -1))
        feats += [alpha, (br - bl) * gamma_fn(2 / alpha) / gamma_fn(1 / alpha), bl, br]
    return np.stack(feats, axis=1)


def local_normalise(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """(x - mu) / (sigma + 1) with a Gaussian local mean and deviation, replicate borders, in image's dtype.

    The precision is part of the protocol (basicsr float32, pyiqa float64): in flat regions the result is
    pure rounding noise (or the window's sum error), and that decides the features of flat blocks.
    """
    mu = correlate(image, window, mode="nearest")  # output in the input's dtype (accumulated in float64)
    sigma = np.sqrt(np.abs(correlate(np.square(image), window, mode="nearest") - np.square(mu)))
    return ((image - mu) / (sigma + image.dtype.type(1))).astype(np.float64)


def _to_blocks(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape
    return image.reshape(h // size, size, w // size, size).transpose(0, 2, 1, 3).reshape(-1, size, size)


def niqe_of_luma(
    luma: np.ndarray, model: NiqeModel | None = None, block: int = BLOCK, dtype: type = np.float32
) -> float:
    """NIQE of one [H, W] luma image on the 0-255 scale (already rounded as the protocol wants).

    `dtype` is the precision of the local normalisation and of the resized image it reads (basicsr
    float32, pyiqa float64); the resize itself always runs in float64.
    """
    model = model or pristine_model()
    h, w = luma.shape
    if h < block or w < block:
        raise ValueError(f"NIQE needs an image of at least {block}x{block} pixels, got {h}x{w}")
    image = luma[: h - h % block, : w - w % block].astype(dtype)
    features = []
    for scale in (1, 2):
        features.append(block_features(_to_blocks(local_normalise(image, model.window), block // scale)))
        if scale == 1:
            image = imresize(image.astype(np.float64) / 255.0, 0.5).astype(dtype) * dtype(255.0)
    dist = np.concatenate(features, axis=1)
    mu_dist = np.nanmean(dist, axis=0)
    cov_dist = np.cov(dist[~np.isnan(dist).any(axis=1)], rowvar=False)
    diff = model.mu - mu_dist
    return float(np.sqrt(diff @ np.linalg.pinv((model.cov + cov_dist) / 2) @ diff))


MIN_SIZE = 2 * BLOCK  # below two blocks per side the block-feature covariance is degenerate


@dataclass(frozen=True)
class Convention:
    """What an implementation decides around the algorithm: its luma, its window and its precision."""

    luma: Callable[[torch.Tensor], np.ndarray]  # uint8 RGB [B,3,H,W] -> float64 [B,H,W]
    model: Callable[[], NiqeModel]
    dtype: type  # precision of the local normalisation


BASICSR = Convention(luma=niqe_luma, model=pristine_model, dtype=np.float32)
PYIQA = Convention(luma=niqe_luma_yiq, model=pyiqa_model, dtype=np.float64)


WORKERS_ENV = "LPMRF_BENCH_NIQE_WORKERS"


def worker_count() -> int:
    """Processes NIQE spreads a batch over: $LPMRF_BENCH_NIQE_WORKERS, else the CPU cores this process may use."""
    value = os.environ.get(WORKERS_ENV, "").strip()
    if not value:
        return usable_cores()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{WORKERS_ENV} must be a whole number of processes >= 1, got {value!r}")
    return int(value)


@lru_cache(maxsize=None)
def _pool(workers: int) -> multiprocessing.pool.Pool:
    """A pool kept for the process's life. Forked, which starts in milliseconds: its workers only run numpy and
    scipy (never torch, whose OpenMP threads do not survive a fork). Each computes whole images with the same
    function as the serial loop, so the values are identical. A worker closes its copy of the task pipe's
    write end, so when a run is killed (it resumes from its store) the workers read EOF and exit."""
    pool = multiprocessing.get_context("fork").Pool(workers)
    atexit.register(pool.terminate)
    return pool


def niqe(images: torch.Tensor, convention: Convention = BASICSR, workers: int | None = None) -> torch.Tensor:
    """Per-image NIQE of uint8 RGB [B,3,H,W], float64 [B]; NaN below MIN_SIZE. Default: PMRF's (basicsr).

    A batch of several images is spread over `workers` processes (default `worker_count()`; 1: this one).
    """
    if min(images.shape[-2:]) < MIN_SIZE:
        return torch.full((images.shape[0],), float("nan"), dtype=torch.float64)
    one = partial(niqe_of_luma, model=convention.model(), dtype=convention.dtype)
    lumas = list(convention.luma(images))
    workers = worker_count() if workers is None else workers
    values = _pool(workers).map(one, lumas, chunksize=1) if min(workers, len(lumas)) > 1 else [one(y) for y in lumas]
    return torch.tensor(values, dtype=torch.float64)


NIQE = MetricSpec(
    name="niqe", spec="niqe/ycbcr601-limited-round-b96-matlab/pmrf-v1", kind="no-reference", higher_is_better=False,
    build=stateless(lambda b: niqe(b.out)), min_size=MIN_SIZE,
    licence="model parameters: MATLAB NIQE release via basicsr (Apache-2.0), see metrics/data/NOTICE",
    description="NIQE, MATLAB pristine model, rounded BT.601 limited-range Y, 96x96 blocks, no crop (basicsr)",
)
NIQE_PYIQA = MetricSpec(
    name="niqe", spec="niqe/yiq-y-round-b96-release-f64/pyiqa-v1", kind="no-reference", higher_is_better=False,
    build=stateless(lambda b: niqe(b.out, PYIQA)), min_size=MIN_SIZE,
    licence="model parameters: MATLAB NIQE release via basicsr (Apache-2.0), see metrics/data/NOTICE",
    description="pyiqa default `niqe`: rounded YIQ Y, float64 normalisation with its float32 window, release model",
)
