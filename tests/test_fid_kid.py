"""`fid` and `kid` on the PMRF protocol's Inception features: values against scipy / clean-fid, the default plan
without the weights, and the summary's flag on FID from fewer than 2048 images."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from cleanfid.fid import kernel_distance as cleanfid_kernel_distance
from scipy import linalg

from lpmrf_bench import store
from lpmrf_bench.metrics.extractors import INCEPTION
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


def test_default_plan_skips_fid_and_kid_naming_the_missing_file():
    plan = plan_metrics("pmrf", None, torch.device("cpu"), None)
    for name in ("fid", "kid"):
        assert "weights-inception-2015-12-05-6726825d.pth" in plan.skipped[name]
    assert not any(m.name in ("fid", "kid") for m in plan.set_metrics)


def test_summary_flags_fid_from_fewer_than_2048_images(tmp_path):
    rows = [{"config_id": f"c{n}", "method": f"m{n}", "dataset": "d", "split": "test", "metric": metric,
             "spec": SET_METRICS[metric].spec, "value": 1.0, "n": n, "ci_low": 0.5, "ci_high": 1.5,
             "reference": "r", "reference_hash": "h", "reference_n": 70}
            for n in (100, 2048) for metric in ("fid", "kid")]
    store.write_parquet(tmp_path / "sets.parquet", pd.DataFrame(rows))
    table = summarize(tmp_path).set_index("config")
    assert table.loc["m100", "fid"].endswith("(n<2048)") and table.loc["m2048", "fid"] == "1 [0.5, 1.5]"
    assert "n<" not in table.loc["m100", "kid"]
