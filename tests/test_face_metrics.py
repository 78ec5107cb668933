"""deg and lmd against the published evaluation scripts run literally on PNG files of real photographs."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from _face_reference import (ARCFACE_MANIFEST, FAN_MANIFEST, degrade, manifest_keys, photos, published_arcface_input,
                             published_fan_input, published_points, random_state, save_png, to_tensor)
from lpmrf_bench.metrics.base import MetricBatch
from lpmrf_bench.metrics.face import (DEG, LMD, arcface_input, fan_input, landmark_distance, mean_excluding_identical,
                                      png_gray)
from lpmrf_bench.models.arcface import load_arcface
from lpmrf_bench.models.fan import heatmaps_to_points, load_fan
from lpmrf_bench.weights import WeightsMissingError, cache_dir

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """(output, ground truth) photographs as uint8 tensors and as the PNG files the published scripts read."""
    folder = tmp_path_factory.mktemp("pairs")
    gts = photos()
    outs = [degrade(im, seed=i) for i, im in enumerate(gts)]
    gt_files = [save_png(im, folder / f"gt{i}.png") for i, im in enumerate(gts)]
    out_files = [save_png(im, folder / f"out{i}.png") for i, im in enumerate(outs)]
    return to_tensor(outs), to_tensor(gts), out_files, gt_files


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """A weights cache holding random non-zero weights in both published file formats."""
    root = tmp_path_factory.mktemp("weights")
    (root / "metrics").mkdir()
    torch.save(random_state(manifest_keys(ARCFACE_MANIFEST), seed=5), root / "metrics" / "resnet18_110.pth",
               _use_new_zipfile_serialization=False)
    fan_state = random_state(manifest_keys(FAN_MANIFEST), seed=6)
    torch.save({"state_dict": fan_state}, root / "metrics" / "alignment_WFLW_4HG.pth")
    return root


@pytest.fixture(scope="module")
def deg(weights_dir):
    return DEG.build(CPU, str(weights_dir))


@pytest.fixture(scope="module")
def lmd(weights_dir):
    return LMD.build(CPU, str(weights_dir))


@pytest.fixture(scope="module")
def lmd_values(pairs, lmd):
    """lmd of the first two pairs in one batch (the FAN is the slow part of this file)."""
    out, gt, _, _ = pairs
    return lmd(MetricBatch(out=out[:2], gt=gt[:2]))


def test_gray_is_what_cv2_imread_returns_for_a_png(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    gray = np.repeat(rng.integers(0, 256, (32, 32, 1), dtype=np.uint8), 3, axis=2)
    images = photos() + [noise, gray]
    for i, rgb in enumerate(images):
        read = cv2.imread(str(save_png(rgb, tmp_path / f"{i}.png")), cv2.IMREAD_GRAYSCALE)
        ours = png_gray(to_tensor([rgb]))[0].numpy()
        np.testing.assert_array_equal(ours, read)
        bt601 = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        assert np.all((bt601 - ours > -0.01) & (bt601 - ours < 1.01)), "BT.601, truncated"
    rgb = images[0]
    rounded = cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2GRAY)
    assert (rounded != png_gray(to_tensor([rgb]))[0].numpy()).mean() > 0.1, "imread's gray is not cvtColor's"


def test_inputs_equal_the_published_preprocessing(pairs):
    out, _, out_files, _ = pairs
    want_arcface = torch.stack([published_arcface_input(f) for f in out_files])
    want_fan = torch.stack([published_fan_input(f) for f in out_files])
    torch.testing.assert_close(arcface_input(out), want_arcface, rtol=0, atol=0)
    torch.testing.assert_close(fan_input(out), want_fan, rtol=0, atol=0)


@pytest.mark.slow
def test_deg_matches_the_published_script(pairs, weights_dir, deg):
    out, gt, out_files, gt_files = pairs
    values = deg(MetricBatch(out=out, gt=gt)).numpy()
    model = load_arcface(weights_dir / "metrics" / "resnet18_110.pth")
    for value, restored_path, gt_path in zip(values, out_files, gt_files):
        with torch.no_grad():
            emb = model(torch.stack([published_arcface_input(gt_path), published_arcface_input(restored_path)])).numpy()
        cos = np.dot(emb[0], emb[1]) / (np.linalg.norm(emb[0]) * np.linalg.norm(emb[1]))
        assert value == pytest.approx(np.arccos(cos) / math.pi * 180, abs=2e-3)
    assert np.all(values > 1.0)


@pytest.mark.slow
def test_lmd_matches_the_published_script(pairs, weights_dir, lmd_values):
    _, _, out_files, gt_files = pairs
    values = lmd_values.numpy()
    model = load_fan(weights_dir / "metrics" / "alignment_WFLW_4HG.pth")

    def published_landmarks(path: Path) -> np.ndarray:
        with torch.no_grad():
            heat = model(published_fan_input(path)[None])[0, :-1].numpy()
        return published_points(heat, width=512, height=512)

    for value, restored_path, gt_path in zip(values, out_files, gt_files):
        a, b = published_landmarks(gt_path), published_landmarks(restored_path)
        assert value == pytest.approx(np.sqrt(((a - b) ** 2).sum(1)).mean(), abs=1e-9)
    assert np.all(values > 0)


@pytest.mark.slow
def test_identical_images_give_zero(pairs, deg, lmd):
    _, gt, _, _ = pairs
    assert deg(MetricBatch(out=gt.clone(), gt=gt)).tolist() == [0.0, 0.0, 0.0]
    assert lmd(MetricBatch(out=gt[:1].clone(), gt=gt[:1])).tolist() == [0.0]


@pytest.mark.parametrize("dx,dy", [(2, 0), (-1, 3)])
def test_lmd_of_shifted_landmarks_is_the_shift(dx, dy):
    gen = torch.Generator().manual_seed(7)
    centres = 10 + 40 * torch.rand(2, 98, 2, generator=gen)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")

    def maps(sx, sy):
        cx, cy = centres[..., 0, None, None] + sx, centres[..., 1, None, None] + sy
        return torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 4)

    a = heatmaps_to_points(maps(0, 0), (512, 512))
    b = heatmaps_to_points(maps(dx, dy), (512, 512))
    torch.testing.assert_close(landmark_distance(a, b), torch.full((2,), 8.0 * math.hypot(dx, dy), dtype=torch.float64))


def test_deg_set_value_leaves_out_pairs_under_one_degree():
    values = np.array([0.0, 0.999, 1.0, 2.0, 30.0, np.nan])
    got = mean_excluding_identical(values)
    assert got.n == 3 and got.value == pytest.approx((1.0 + 2.0 + 30.0) / 3)
    assert DEG.aggregate is mean_excluding_identical
    empty = mean_excluding_identical(np.array([0.2]))
    assert empty.n == 0 and math.isnan(empty.value)


@pytest.mark.slow
def test_batches_give_the_per_image_values(pairs, lmd, lmd_values):
    out, gt, _, _ = pairs
    alone = torch.cat([lmd(MetricBatch(out=out[i : i + 1], gt=gt[i : i + 1])) for i in range(len(lmd_values))])
    torch.testing.assert_close(lmd_values, alone, rtol=0, atol=1e-9)


@pytest.mark.slow
def test_bad_input_errors(pairs, deg, tmp_path, monkeypatch):
    out, gt, _, _ = pairs
    with pytest.raises(ValueError, match="ground truth; this set has none"):
        deg(MetricBatch(out=out, gt=None))
    with pytest.raises(ValueError, match="uint8 RGB"):
        deg(MetricBatch(out=out.float(), gt=gt.float()))
    monkeypatch.setenv("LPMRF_BENCH_OFFLINE", "1")
    with pytest.raises(WeightsMissingError, match=r"alignment_WFLW_4HG\.pth[\s\S]*drive\.google\.com"):
        LMD.build(CPU, str(tmp_path))


def _real_weights() -> Path:
    root = cache_dir()
    for name in ("resnet18_110.pth", "alignment_WFLW_4HG.pth"):
        if not (root / "metrics" / name).is_file():
            pytest.skip(f"published weights not found: put {name} in {root / 'metrics'}")
    return root


@pytest.mark.weights
def test_published_weights_on_photographs(pairs):
    root = _real_weights()
    out, gt, _, _ = pairs
    same = MetricBatch(out=gt.clone(), gt=gt)
    other = MetricBatch(out=out, gt=gt)
    for spec in (DEG, LMD):
        fn = spec.build(CPU, str(root))
        assert fn(same).tolist() == [0.0, 0.0, 0.0]
        values = fn(other)
        assert torch.isfinite(values).all() and (values > 0).all()
