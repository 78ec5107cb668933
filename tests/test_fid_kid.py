"""`fid`, `kid`, `precision`, `recall`: values against scipy / clean-fid / torch-fidelity, the default plan
without the weights, and the summary's flag on FID from fewer than 2048 images."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from cleanfid.fid import kernel_distance as cleanfid_kernel_distance
from scipy import linalg

from lpmrf_bench import store
from lpmrf_bench.metrics import distribution
from lpmrf_bench.metrics.extractors import INCEPTION, VGG16
from lpmrf_bench.metrics.references import Reference
from lpmrf_bench.metrics.setlevel import SET_METRICS, score
from lpmrf_bench.plan import plan_metrics
from lpmrf_bench.summary import summarize

RNG = np.random.default_rng(0)
REF = Reference("r", INCEPTION.spec, RNG.standard_normal((70, 10)), "hash", "random")
FEATS = RNG.standard_normal((40, 10)) + 0.3


def test_specs_name_the_protocol_backbone_and_resize():
    for name in ("fid", "kid"):
        metric = SET_METRICS[name]
        assert metric.extractor == "inception" and INCEPTION.spec in metric.spec
        assert "torch-fidelity" in metric.spec and "tf1-bilinear299" in metric.spec


def test_fid_equals_scipy_sqrtm():
    s1, s2 = np.cov(FEATS, rowvar=False), np.cov(REF.features, rowvar=False)
    d = FEATS.mean(0) - REF.features.mean(0)
    want = d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real
    assert score(SET_METRICS["fid"], FEATS, REF, resamples=3).value == pytest.approx(want, rel=1e-6)


def test_kid_equals_cleanfid_with_subsets_of_min_1000_n():
    np.random.seed(0)  # clean-fid draws from the global RNG; compute_kid passes (set, reference)
    want = cleanfid_kernel_distance(FEATS, REF.features, num_subsets=100, max_subset_size=1000)
    assert score(SET_METRICS["kid"], FEATS, REF, resamples=3).value == pytest.approx(want, rel=1e-10)


def test_default_plan_skips_them_naming_the_missing_file():
    plan = plan_metrics("pmrf", None, torch.device("cpu"), None)
    files = {"fid": "weights-inception-2015-12-05-6726825d.pth", "kid": "weights-inception-2015-12-05-6726825d.pth",
             "precision": "vgg16-397923af.pth", "recall": "vgg16-397923af.pth"}
    for name, file in files.items():
        assert file in plan.skipped[name]
    assert not any(m.name in files for m in plan.set_metrics)


def test_summary_flags_fid_from_fewer_than_2048_images(tmp_path):
    rows = [{"config_id": f"c{n}", "method": f"m{n}", "dataset": "d", "split": "test", "metric": metric,
             "spec": SET_METRICS[metric].spec, "value": 1.0, "n": n, "ci_low": 0.5, "ci_high": 1.5,
             "reference": "r", "reference_hash": "h", "reference_n": 70}
            for n in (100, 2048) for metric in ("fid", "kid")]
    store.write_parquet(tmp_path / "sets.parquet", pd.DataFrame(rows))
    table = summarize(tmp_path).set_index("config")
    assert table.loc["m100", "fid"].endswith("(n<2048)") and table.loc["m2048", "fid"] == "1 [0.5, 1.5]"
    assert "n<" not in table.loc["m100", "kid"]


@pytest.mark.parametrize("chunk", [1024, 7])
def test_precision_recall_equal_torch_fidelity(chunk, monkeypatch):
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    monkeypatch.setattr(distribution, "ROW_CHUNK", chunk)  # chunked distance rows give the same sets
    real, fake = RNG.standard_normal((50, 6)), RNG.standard_normal((30, 6)) * 1.3 + 0.2
    # torch-fidelity's argument order: (generated, real)
    want = calculate_precision_recall_full(torch.from_numpy(fake), torch.from_numpy(real), neighborhood=3)
    ref = Reference("r", VGG16.spec, real, "hash", "random")
    # their mean is float32; one image is 1/30
    assert score(SET_METRICS["precision"], fake, ref, resamples=3).value == pytest.approx(want[0], abs=1e-6)
    assert score(SET_METRICS["recall"], fake, ref, resamples=3).value == pytest.approx(want[1], abs=1e-6)
    assert 0 < want[0] < 1 and 0 < want[1] < 1


def test_precision_recall_resamples_against_an_explicit_loop():
    real, fake = RNG.standard_normal((25, 4)), RNG.standard_normal((15, 4)) + 0.3
    ref = Reference("r", VGG16.spec, real, "hash", "random")
    index = np.random.default_rng(5).integers(0, 15, size=(4, 15))
    d_rr = np.linalg.norm(real[:, None] - real[None], axis=2)
    d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=2)
    real_r, fake_r = np.sort(d_rr, 1)[:, 3], np.sort(d_ff, 1)[:, 3]  # radii of the full sets
    for row, p, r in zip(index, SET_METRICS["precision"].resampled(fake, ref, index),
                         SET_METRICS["recall"].resampled(fake, ref, index)):
        inside = [any(np.linalg.norm(fake[i] - real[j]) <= real_r[j] for j in range(25)) for i in row]
        covered = [any(np.linalg.norm(real[j] - fake[i]) <= fake_r[i] for i in set(row)) for j in range(25)]
        assert p == pytest.approx(np.mean(inside)) and r == pytest.approx(np.mean(covered))
