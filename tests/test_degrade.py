"""The face degradation pipelines against an explicit re-statement of the published steps (direct cv2 calls,
a closed-form kernel, torchvision's colour jitter), plus determinism, replay and the drawn distributions."""
from __future__ import annotations

import dataclasses
import math
import multiprocessing

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from skimage import data
from torchvision.transforms import functional as tvf

from _degrade_worker import degrade_keys
from lpmrf_bench.data.degrade import (
    DIFFACE, GFPGAN, PIPELINES, DegradationParams, add_noise, apply, blur_kernel, degrade, jpeg, sample_params)


@pytest.fixture(scope="module")
def photo512() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut())  # 512x512 RGB photograph


@pytest.fixture(scope="module")
def photo64(photo512) -> np.ndarray:
    return cv2.resize(photo512, (64, 64), interpolation=cv2.INTER_AREA)


@pytest.fixture
def one_torch_thread():
    """torchvision's colour ops on small images are slower with threads on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def closed_form_kernel(size: int, sx: float, sy: float, theta: float) -> np.ndarray:
    """exp(-d^T S^-1 d / 2) at every integer offset d = (column, row) from the centre, S = R diag(sx^2, sy^2) R^T."""
    c, s = math.cos(theta), math.sin(theta)
    s_xx = c * c * sx * sx + s * s * sy * sy
    s_yy = s * s * sx * sx + c * c * sy * sy
    s_xy = c * s * (sx * sx - sy * sy)
    det = s_xx * s_yy - s_xy * s_xy
    k = np.zeros((size, size))
    for row in range(size):
        for col in range(size):
            x, y = col - size // 2, row - size // 2
            k[row, col] = math.exp(-0.5 * (s_yy * x * x - 2 * s_xy * x * y + s_xx * y * y) / det)
    return k / k.sum()


def reference(hq: np.ndarray, p: DegradationParams) -> tuple[np.ndarray, np.ndarray]:
    """The published sequence (GFPGAN/DifFace `__getitem__`) written out with direct library calls."""
    gt = hq[..., ::-1].astype(np.float32) / 255.0  # what basicsr's imfrombytes(float32=True) gives
    if p.flip:
        gt = cv2.flip(gt, 1)
    lq = cv2.filter2D(gt, -1, closed_form_kernel(p.kernel_size, p.sigma_x, p.sigma_y, p.rotation))
    h, w = gt.shape[:2]
    lq = cv2.resize(lq, (int(w // p.scale), int(h // p.scale)), interpolation=cv2.INTER_LINEAR)
    noise = np.random.default_rng(p.noise_seed).standard_normal(lq.shape, dtype=np.float32) * p.noise_sigma / 255.0
    lq = np.clip(lq + noise, 0, 1)
    _, buf = cv2.imencode(".jpg", lq * 255.0, [int(cv2.IMWRITE_JPEG_QUALITY), p.jpeg_quality])
    lq = np.float32(cv2.imdecode(buf, 1)) / 255.0
    lq = cv2.resize(lq, (w, h), interpolation=cv2.INTER_LINEAR)
    if p.color_shift:
        lq = np.clip(lq + np.array([p.shift_b, p.shift_g, p.shift_r], dtype=np.float32), 0, 1)
    if p.gray:
        lq = np.tile(cv2.cvtColor(lq, cv2.COLOR_BGR2GRAY)[:, :, None], [1, 1, 3])
        if p.gray_gt:
            gt = np.tile(cv2.cvtColor(gt, cv2.COLOR_BGR2GRAY)[:, :, None], [1, 1, 3])
    lq_t = torch.from_numpy(np.ascontiguousarray(lq[..., ::-1].transpose(2, 0, 1)))
    fns = {"b": (tvf.adjust_brightness, p.brightness), "c": (tvf.adjust_contrast, p.contrast),
           "s": (tvf.adjust_saturation, p.saturation), "h": (tvf.adjust_hue, p.hue)}
    for op in p.jitter_order:
        fn, factor = fns[op]
        lq_t = fn(lq_t, factor)
    lq8 = torch.clamp((lq_t * 255.0).round(), 0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    gt8 = np.clip(np.round(gt[..., ::-1] * 255.0), 0, 255).astype(np.uint8)
    return lq8, gt8


def forced(config, seed: int, size: int, **overrides) -> DegradationParams:
    return dataclasses.replace(sample_params(config, np.random.default_rng(seed), size), **overrides)


# ---- the steps against closed forms and direct cv2 calls ----

@pytest.mark.parametrize("size,sx,sy,theta", [(41, 12.0, 3.0, 0.7), (41, 0.1, 0.1, 0.0), (7, 1.8, 0.4, -2.5), (21, 5.0, 5.0, 1.0)])
def test_blur_kernel_is_the_closed_form_gaussian(size, sx, sy, theta):
    np.testing.assert_allclose(blur_kernel(size, sx, sy, theta), closed_form_kernel(size, sx, sy, theta), rtol=1e-10, atol=1e-15)


def test_blur_kernel_second_moments_are_the_covariance():
    # sigma small against the window: the truncated kernel's moments are the covariance it was built from
    sx, sy, theta = 3.0, 1.0, 0.5
    k = blur_kernel(41, sx, sy, theta)
    ax = np.arange(41) - 20
    xx, yy = np.meshgrid(ax, ax)  # x = column offset, y = row offset
    c, s = math.cos(theta), math.sin(theta)
    assert (k * xx * xx).sum() == pytest.approx(c * c * sx * sx + s * s * sy * sy, rel=1e-6)
    assert (k * yy * yy).sum() == pytest.approx(s * s * sx * sx + c * c * sy * sy, rel=1e-6)
    assert (k * xx * yy).sum() == pytest.approx(c * s * (sx * sx - sy * sy), rel=1e-6)


def test_jpeg_equals_cv2_round_trip(photo512):
    img = photo512[..., ::-1].astype(np.float32) / 255.0
    for quality in (30, 77, 100):
        _, buf = cv2.imencode(".jpg", img * 255.0, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
        expected = cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) / 255.0
        np.testing.assert_array_equal(jpeg(img, quality), expected)


def test_noise_has_the_requested_sigma_and_is_clipped(photo512):
    flat = np.full((256, 256, 3), 0.5, dtype=np.float32)
    noisy = add_noise(flat, 12.0, seed=3)
    assert np.std(noisy - flat) * 255 == pytest.approx(12.0, rel=0.02)
    assert abs(np.mean(noisy - flat)) * 255 < 0.2
    photo = photo512.astype(np.float32) / 255.0
    out = add_noise(photo, 20.0, seed=3)
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(out, add_noise(photo, 20.0, seed=3))
    assert not np.array_equal(out, add_noise(photo, 20.0, seed=4))


@pytest.mark.parametrize("seed,overrides", [
    (1, {}),
    (2, {"flip": True, "kernel": "aniso", "sigma_x": 9.0, "sigma_y": 2.0, "rotation": 1.1, "scale": 3.7}),
    (3, {"gray": True, "scale": 31.5, "jpeg_quality": 30}),
    (4, {"flip": False, "scale": 0.8, "noise_sigma": 19.9, "jpeg_quality": 99}),
])
def test_difface_apply_equals_published_sequence(photo512, seed, overrides):
    p = forced(DIFFACE, seed, 512, **overrides)
    lq, gt = apply(photo512, p)
    ref_lq, ref_gt = reference(photo512, p)
    np.testing.assert_array_equal(lq, ref_lq)
    np.testing.assert_array_equal(gt, ref_gt)
    assert lq.dtype == np.uint8 and lq.shape == photo512.shape
    if p.gray:
        assert (lq[..., 0] == lq[..., 1]).all() and (gt[..., 0] == gt[..., 2]).all()


@pytest.mark.parametrize("seed,overrides", [
    (5, {"color_shift": True, "shift_r": 0.05, "shift_g": -0.07, "shift_b": 0.02}),
    (6, {"jitter_order": "hcbs", "brightness": 1.3, "contrast": 0.6, "saturation": 0.2, "hue": 0.08}),
    (7, {"gray": True, "jitter_order": "sbhc", "brightness": 0.7, "contrast": 1.4, "saturation": 1.2, "hue": -0.09}),
])
def test_gfpgan_apply_matches_published_sequence(photo512, seed, overrides, one_torch_thread):
    p = forced(GFPGAN, seed, 512, **overrides)
    lq, gt = apply(photo512, p)
    ref_lq, ref_gt = reference(photo512, p)
    diff = np.abs(lq.astype(int) - ref_lq.astype(int))
    # numpy vs torch float32 arithmetic may tip a rounding at a .5 boundary; nothing more
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    np.testing.assert_array_equal(gt, ref_gt)
    if p.gray:
        assert not (gt[..., 0] == gt[..., 2]).all()  # gfpgan keeps a colour GT for a gray LQ


def test_downsampled_size_is_int_w_floor_div_scale(photo512, monkeypatch):
    sizes = []
    resize = cv2.resize

    def spy(img, dsize, interpolation):
        sizes.append((dsize, interpolation))
        return resize(img, dsize, interpolation=interpolation)

    monkeypatch.setattr(cv2, "resize", spy)
    apply(photo512, forced(DIFFACE, 8, 512, scale=3.7))
    assert sizes == [((138, 138), cv2.INTER_LINEAR), ((512, 512), cv2.INTER_LINEAR)]  # int(512 // 3.7) = 138


# ---- determinism and replay ----

KEYS = [f"img_{i:03d}" for i in range(12)]


def test_same_seed_same_bytes_regardless_of_order_and_batches():
    forward = degrade_keys((KEYS, 0, 64))
    backward = degrade_keys((KEYS[::-1], 0, 64))
    batches = {}
    for start in range(0, len(KEYS), 5):
        batches.update(degrade_keys((KEYS[start:start + 5][::-1], 0, 64)))
    np.random.seed(123)  # a global RNG state must not matter
    alone = degrade_keys((KEYS[7:8], 0, 64))
    assert forward == backward == batches
    assert alone[KEYS[7]] == forward[KEYS[7]]
    assert len(set(forward.values())) == len(KEYS)


@pytest.mark.slow
def test_same_bytes_in_two_worker_processes():
    in_process = degrade_keys((KEYS, 5, 64))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        parts = pool.map(degrade_keys, [(KEYS[0::2], 5, 64), (KEYS[1::2], 5, 64)])
    merged = {**parts[0], **parts[1]}
    assert merged == in_process


def test_different_seeds_differ(photo64):
    a = degrade(photo64, DIFFACE.scaled_to(64), 0, "x")
    b = degrade(photo64, DIFFACE.scaled_to(64), 1, "x")
    assert a[2] != b[2] and not np.array_equal(a[0], b[0])


def test_replay_from_stored_params_reproduces_lq_bytes(tmp_path, photo512, photo64):
    rows, outputs = [], {}
    for pipeline in ("difface", "gfpgan"):
        for size, hq in ((512, photo512), (64, photo64)):
            for key in ("a", "b", "c"):
                lq, gt, params = degrade(hq, PIPELINES[pipeline].scaled_to(size), 11, key)
                image_id = f"{pipeline}/{size}/{key}"
                outputs[image_id] = (hq, lq, gt)
                rows.append({"image_id": image_id, **params.to_dict()})
    pd.DataFrame(rows).to_parquet(tmp_path / "params.parquet")
    for row in pd.read_parquet(tmp_path / "params.parquet").to_dict("records"):
        hq, lq, gt = outputs[row["image_id"]]
        params = DegradationParams.from_dict(row)
        replay_lq, replay_gt = apply(hq, params)
        np.testing.assert_array_equal(replay_lq, lq)
        np.testing.assert_array_equal(replay_gt, gt)


def test_from_dict_names_missing_fields():
    row = forced(DIFFACE, 0, 512).to_dict()
    del row["noise_seed"]
    with pytest.raises(KeyError, match="noise_seed"):
        DegradationParams.from_dict(row)


def test_apply_refuses_an_image_of_another_size(photo64):
    with pytest.raises(ValueError, match="512x512"):
        apply(photo64, forced(DIFFACE, 0, 512))


# ---- the distribution of draws ----

N_DRAWS = 4000


def _bounds_ok(values, low, high, n_bins=10):
    """All in [low, high], and every tenth of the range holds 10% +- 5 binomial sd of the draws."""
    values = np.asarray(values)
    assert values.min() >= low and values.max() <= high
    counts, _ = np.histogram(values, bins=n_bins, range=(low, high))
    expected = len(values) / n_bins
    sd = math.sqrt(len(values) * (1 / n_bins) * (1 - 1 / n_bins))
    assert np.all(np.abs(counts - expected) < 5 * sd), counts


def _proportion_ok(flags, p):
    n, k = len(flags), int(np.sum(flags))
    assert abs(k - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1, (k, n * p)


def test_difface_draws_cover_published_ranges():
    rng = np.random.default_rng(2024)
    draws = [sample_params(DIFFACE, rng, 512) for _ in range(N_DRAWS)]
    iso = np.array([d.kernel == "iso" for d in draws])
    _proportion_ok(iso, 0.5)
    _proportion_ok([d.flip for d in draws], 0.5)
    _proportion_ok([d.gray for d in draws], 0.01)
    assert all(d.gray_gt for d in draws) and not any(d.color_shift or d.jitter_order for d in draws)
    _bounds_ok([d.sigma_x for d in draws], 0.1, 15.0)
    _bounds_ok([d.sigma_y for d, i in zip(draws, iso) if not i], 0.1, 15.0)
    _bounds_ok([d.rotation for d, i in zip(draws, iso) if not i], -math.pi, math.pi)
    assert all(d.sigma_y == d.sigma_x and d.rotation == 0.0 for d, i in zip(draws, iso) if i)
    _bounds_ok([d.scale for d in draws], 0.8, 32.0)
    _bounds_ok([d.noise_sigma for d in draws], 0.0, 20.0)
    qualities = [d.jpeg_quality for d in draws]
    assert set(qualities) == set(range(30, 100))  # int(U[30, 100]): 30..99, each about 1/70
    assert stats.chisquare(np.bincount(qualities)[30:]).pvalue > 1e-6
    assert stats.kstest([d.scale for d in draws], stats.uniform(0.8, 31.2).cdf).pvalue > 1e-6
    assert len({d.noise_seed for d in draws}) == N_DRAWS
    assert all(d.kernel_size == 41 and d.size == 512 for d in draws)


def test_gfpgan_draws_cover_published_ranges():
    rng = np.random.default_rng(7)
    draws = [sample_params(GFPGAN, rng, 512) for _ in range(N_DRAWS)]
    _proportion_ok([d.kernel == "iso" for d in draws], 0.5)
    _proportion_ok([d.color_shift for d in draws], 0.3)
    _proportion_ok([bool(d.jitter_order) for d in draws], 0.3)
    _proportion_ok([d.gray for d in draws], 0.01)
    _bounds_ok([d.sigma_x for d in draws], 0.1, 10.0)
    _bounds_ok([d.scale for d in draws], 0.8, 8.0)
    assert set(d.jpeg_quality for d in draws) == set(range(60, 100))
    shifts = np.array([(d.shift_r, d.shift_g, d.shift_b) for d in draws if d.color_shift])
    _bounds_ok(shifts.ravel() * 255, -20.0, 20.0)
    jittered = [d for d in draws if d.jitter_order]
    assert all(sorted(d.jitter_order) == sorted("bcsh") for d in jittered)
    assert len({d.jitter_order for d in jittered}) == 24
    _bounds_ok([d.brightness for d in jittered], 0.5, 1.5)
    _bounds_ok([d.saturation for d in jittered], 0.0, 1.5)
    _bounds_ok([d.hue for d in jittered], -0.1, 0.1)
    assert not any(d.gray_gt for d in draws)


# ---- smaller resolutions ----

def test_scaled_to_keeps_published_at_512_and_scales_lengths():
    assert DIFFACE.scaled_to(512) == DIFFACE and GFPGAN.scaled_to(512) == GFPGAN
    small = DIFFACE.scaled_to(64)
    assert small.kernel_size == 7 and small.blur_sigma == pytest.approx((0.0125, 1.875))
    assert small.downsample == pytest.approx((0.8, 4.0))
    assert (small.noise_sigma, small.jpeg_quality, small.gray_prob) == (DIFFACE.noise_sigma, DIFFACE.jpeg_quality, 0.01)
    assert DIFFACE.scaled_to(256).kernel_size == 21
    assert GFPGAN.scaled_to(64).downsample == pytest.approx((0.8, 1.0))


def test_scaled_pipeline_never_shrinks_a_64px_face_below_16px():
    config = DIFFACE.scaled_to(64)
    rng = np.random.default_rng(0)
    smallest = min(int(64 // sample_params(config, rng, 64).scale) for _ in range(N_DRAWS))
    assert 16 <= smallest <= 17
