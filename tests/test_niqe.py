"""NIQE against basicsr's published code (values in tests/reference/), and its parts against independent maths."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import maximum_filter, minimum_filter
from scipy.special import gamma as gamma_fn

from lpmrf_bench.metrics.base import MetricBatch
from lpmrf_bench.metrics.fullref import luma_bt601
from lpmrf_bench.metrics.niqe import (
    NIQE,
    NIQE_PYIQA,
    PYIQA,
    WORKERS_ENV,
    aggd_fit,
    imresize,
    niqe,
    niqe_luma,
    niqe_of_luma,
    pristine_model,
    pyiqa_model,
    worker_count,
)

REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
from niqe_basicsr import reference_images
from niqe_pyiqa import reference_images as pyiqa_images


def as_batch(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].contiguous()


@pytest.mark.parametrize("name", ["astronaut", "astronaut_noise15", "chelsea", "coffee", "half_flat"])
def test_matches_basicsr(name):
    ref = json.loads((REFERENCE / "niqe_basicsr.json").read_text())["niqe"][name]
    got = niqe(as_batch(reference_images()[name])).item()
    # basicsr resizes in float32; in flat regions that rounding noise moves NIQE by up to ~3e-4
    assert got == pytest.approx(ref, abs=1e-3)



PYIQA_NAMES = ["astronaut", "astronaut_noise15", "chelsea", "coffee", "half_flat", "rocket", "camera_gray",
               "astronaut_192x288", "coffee_200x250"]


@pytest.fixture(scope="module")
def pyiqa_reference():
    return pyiqa_images(), json.loads((REFERENCE / "niqe_pyiqa.json").read_text())["niqe"]


def flat_windows(luma: np.ndarray) -> int:
    """Pixels whose 7x7 neighbourhood is constant: there NIQE's normalised value is rounding noise."""
    return int((maximum_filter(luma, 7) == minimum_filter(luma, 7)).sum())


@pytest.mark.parametrize("name", PYIQA_NAMES)
def test_matches_pyiqa(pyiqa_reference, name):
    images, values = pyiqa_reference
    ref, batch = values[name], as_batch(images[name])
    # pyiqa's default pipeline (YIQ luma, float64, its float32 window): measured |difference| <= 2e-6 on
    # all nine; pyiqa resizes in float32 (its `cast_input` always casts) and builds the shape grid with
    # lgamma, we resize in float64 and use gamma
    assert niqe(batch, PYIQA).item() == pytest.approx(ref["pipeline_yiq"], abs=1e-5)
    # its core on our basicsr luma: the same, except up to 5e-4 (astronaut_192x288) where some 7x7
    # windows are flat, whose normalised values are summation-order noise in either library
    y = niqe_luma(batch)[0]
    tol = 1e-3 if flat_windows(y) else 1e-5
    assert niqe_of_luma(y, pyiqa_model(), dtype=np.float64) == pytest.approx(ref["core"], abs=tol)
    if not flat_windows(y):  # with the exactly normalised window, flat regions are pure rounding noise
        assert niqe_of_luma(y, dtype=np.float64) == pytest.approx(ref["core_same_window"], abs=1e-5)


def test_pyiqa_window_is_fspecial_rounded_to_float32():
    r = np.arange(-3, 4)
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * (7 / 6) ** 2))
    want = (g / g.sum()).astype(np.float32).astype(np.float64)
    model = pyiqa_model()
    assert np.array_equal(model.window, want)
    assert abs(model.window.sum() - 1) > 1e-9  # not renormalised after rounding: flat regions see the offset
    assert np.array_equal(model.mu, pristine_model().mu) and np.array_equal(model.cov, pristine_model().cov)


def test_pyiqa_spec(pyiqa_reference):
    images, _ = pyiqa_reference
    batch = torch.cat([as_batch(images["chelsea"][:288, :384]), as_batch(images["coffee"][:288, :384])])
    got = NIQE_PYIQA.build(torch.device("cpu"), None)(MetricBatch(out=batch))
    torch.testing.assert_close(got, niqe(batch, PYIQA))
    assert NIQE_PYIQA.name == NIQE.name and NIQE_PYIQA.spec.endswith("/pyiqa-v1") and NIQE_PYIQA.spec != NIQE.spec
    # the two conventions are different numbers on photographs (YIQ vs limited-range YCbCr luma)
    assert (got - niqe(batch)).abs().min() > 1e-3


def test_per_image_in_a_batch():
    images = reference_images()
    a, b = images["chelsea"][:288, :384], images["coffee"][:288, :384]
    batch = torch.cat([as_batch(a), as_batch(b)])
    got = NIQE.build(torch.device("cpu"), None)(MetricBatch(out=batch))
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, torch.cat([niqe(as_batch(a)), niqe(as_batch(b))]))
    assert got[0] != got[1]


def test_imresize_interior_equals_torch_antialiased_bicubic():
    # away from the borders MATLAB's antialiased bicubic is the same filter as torch's (Keys a = -0.5)
    x = np.random.default_rng(0).random((64, 80))
    want = F.interpolate(torch.from_numpy(x)[None, None], scale_factor=0.5, mode="bicubic", antialias=True)[0, 0]
    got = imresize(x, 0.5)
    assert got.shape == (32, 40)
    np.testing.assert_allclose(got[2:-2, 2:-2], want.numpy()[2:-2, 2:-2], atol=1e-12)


def test_imresize_border_is_symmetric_padding():
    # an explicit loop over MATLAB's definition for one output pixel at the border
    x = np.random.default_rng(1).random(9)
    a = lambda t: np.where(np.abs(t) <= 1, 1.5 * np.abs(t) ** 3 - 2.5 * t**2 + 1,
                           np.where(np.abs(t) <= 2, -0.5 * np.abs(t) ** 3 + 2.5 * t**2 - 4 * np.abs(t) + 2, 0))
    padded = np.concatenate([x[::-1], x, x[::-1]])  # index -k-1 -> x[k]
    u = 1 / 0.5 + 0.5 * (1 - 1 / 0.5)  # output pixel 1 (1-based) in input coordinates (1-based)
    taps = np.arange(-6, 8)
    w = 0.5 * a(0.5 * (u - taps))
    want = sum(wi * padded[9 + t - 1] for wi, t in zip(w, taps)) / w.sum()
    got = imresize(x[None, :], 0.5)[0, 0]
    assert got == pytest.approx(want, abs=1e-12)
    assert imresize(np.full((10, 14), 3.25), 0.5) == pytest.approx(np.full((5, 7), 3.25))


def test_aggd_fit_brute_force_and_closed_form():
    rng = np.random.default_rng(0)
    left, right = 0.7, 1.6  # standard deviations of the two halves of an AGGD with shape 2
    # AGGD: the left side has probability beta_l / (beta_l + beta_r), each side a half-Gaussian
    side = rng.random(200_000) < left / (left + right)
    samples = np.abs(rng.normal(size=200_000)) * np.where(side, -left, right)
    laplace = rng.laplace(size=200_000)
    alpha, bl, br = aggd_fit(np.stack([samples, laplace]))
    # Gaussian halves: shape 2, scales sigma * sqrt(Gamma(1/2) / Gamma(3/2)) = sigma * sqrt(2)
    assert alpha[0] == pytest.approx(2.0, abs=0.03)
    assert bl[0] == pytest.approx(left * 2**0.5, rel=0.02) and br[0] == pytest.approx(right * 2**0.5, rel=0.02)
    assert alpha[1] == pytest.approx(1.0, abs=0.03)
    # the grid search, written as a slow loop over the release's grid
    x = samples[:5000]
    sl, sr = np.sqrt(np.mean(x[x < 0] ** 2)), np.sqrt(np.mean(x[x > 0] ** 2))
    gh = sl / sr
    r = np.mean(np.abs(x)) ** 2 / np.mean(x**2) * (gh**3 + 1) * (gh + 1) / (gh**2 + 1) ** 2
    best, best_err = None, np.inf
    for k in range(9801):
        a = 0.2 + 0.001 * k
        err = (gamma_fn(2 / a) ** 2 / (gamma_fn(1 / a) * gamma_fn(3 / a)) - r) ** 2
        if err < best_err:
            best, best_err = a, err
    a1, bl1, br1 = aggd_fit(x[None])
    assert a1[0] == pytest.approx(best, abs=1e-9)
    assert bl1[0] == pytest.approx(sl * np.sqrt(gamma_fn(1 / best) / gamma_fn(3 / best)), rel=1e-9)
    assert br1[0] == pytest.approx(sr * np.sqrt(gamma_fn(1 / best) / gamma_fn(3 / best)), rel=1e-9)


def test_aggd_fit_one_sided_rows_are_nan():
    alpha, bl, br = aggd_fit(np.stack([np.zeros(50), np.linspace(0.1, 1, 50)]))
    assert np.isnan(bl).all() and np.isnan(br[0])
    assert alpha[0] == pytest.approx(0.2)  # the release's argmin over NaN picks the first grid point


def test_luma_is_rounded_limited_range_y():
    rgb = as_batch(reference_images()["coffee"])
    y = niqe_luma(rgb)
    assert np.array_equal(y, np.round(y)) and y.min() >= 16 and y.max() <= 235
    exact = luma_bt601(rgb)[:, 0].numpy()
    assert np.abs(y - exact).max() <= 0.5 + 1e-6
    assert (y == np.round(exact)).mean() > 0.9999


def test_pristine_model_is_the_release():
    m = pristine_model()
    assert m.mu.shape == (36,) and m.cov.shape == (36, 36) and m.window.shape == (7, 7)
    assert m.window.sum() == pytest.approx(1.0) and np.allclose(m.cov, m.cov.T)


def test_bad_input():
    with pytest.raises(ValueError, match="at least 96x96"):
        niqe_of_luma(np.zeros((64, 200)))
    assert torch.isnan(niqe(torch.zeros(2, 3, 191, 400, dtype=torch.uint8))).all()  # below two blocks a side
    with pytest.raises(ValueError, match="uint8"):
        niqe(torch.zeros(1, 3, 256, 256))


def test_worker_pool_gives_the_serial_values(monkeypatch):
    images = reference_images()
    crops = [images[name][:192, :288] for name in ("astronaut", "chelsea", "coffee")]
    batch = torch.cat([as_batch(c) for c in crops])
    serial = niqe(batch, workers=1)
    assert niqe(batch, workers=2).tolist() == serial.tolist()  # bit-identical, in image order
    assert niqe(batch, PYIQA, workers=3).tolist() == niqe(batch, PYIQA, workers=1).tolist()
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert worker_count() == 2
    monkeypatch.setenv(WORKERS_ENV, "0")
    with pytest.raises(ValueError, match="LPMRF_BENCH_NIQE_WORKERS must be a whole number"):
        niqe(batch)
    monkeypatch.delenv(WORKERS_ENV)
    assert worker_count() == len(os.sched_getaffinity(0))


KILLED_PARENT = """
import sys, time, torch
from lpmrf_bench.metrics.niqe import _pool, niqe
niqe(torch.randint(0, 256, (2, 3, 192, 192), dtype=torch.uint8), workers=2)
print(*[p.pid for p in _pool(2)._pool], flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads process states from /proc")
def test_pool_workers_exit_when_the_run_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", KILLED_PARENT], stdout=subprocess.PIPE, text=True)
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
