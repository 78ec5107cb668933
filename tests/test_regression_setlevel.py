"""The regression gate on set-level metrics: both runs' features resampled jointly, else the stored intervals."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
from click.testing import CliRunner

from lpmrf_bench import store
from lpmrf_bench.cli.main import main
from lpmrf_bench.metrics import references
from lpmrf_bench.metrics.extractors import MOBILENET
from lpmrf_bench.metrics.setlevel import BOOTSTRAP_RESAMPLES, SET_METRICS, score
from lpmrf_bench.regression import (PAIRED_FEATURES, STORED_INTERVALS, IncomparableError, compare,
                                    load_evaluation)

FD = SET_METRICS["fd_mobilenet"]
N, DIM = 40, 8  # images, feature dimensions (tiny stand-ins for MobileNet's 1280)


@pytest.fixture
def reference(tmp_path, monkeypatch):
    """A cached reference of random features under the MobileNet extractor's spec, in a private cache."""
    monkeypatch.setenv(references.CACHE_ENV, str(tmp_path / "references"))
    feats = np.random.default_rng(0).normal(size=(500, DIM))
    ref = references.Reference("test-ref", MOBILENET.spec, feats, hashlib.sha256(b"test-ref").hexdigest(), "random")
    references.save(ref, MOBILENET)
    return references.load_cached("test-ref", MOBILENET)  # as stored: float32-rounded, like every cached one


def _run(run_dir, feats, ref, *, with_features=True, reference_hash=None):
    """A run directory holding one configuration's fd_mobilenet value (and its features, unless told not to)."""
    feats = feats.astype(np.float32)
    result = score(FD, feats, ref)
    config = {"run_id": run_dir.name, "config_id": "cfg", "method": "identity", "weights": "-"}
    run_dir.mkdir()
    store.write_json(run_dir / "manifest.json", {"run_id": run_dir.name, "seed": 0})  # what a report's provenance reads
    pd.DataFrame([{**config, "dataset": "synthetic-faces", "split": "test", "metric": FD.name, "spec": FD.spec,
                   "value": result.value, "n": result.n, "ci_low": result.ci_low, "ci_high": result.ci_high,
                   "reference": ref.name, "reference_hash": reference_hash or ref.content_hash,
                   "reference_n": ref.n}]).to_parquet(run_dir / "sets.parquet")
    if with_features:
        store.append(run_dir, "features", [{**config, "sample": 0, "dataset": "synthetic-faces", "split": "test",
                                            "image_id": f"{i:03d}", "extractor": MOBILENET.spec, "feature": f}
                                           for i, f in enumerate(feats)])
    return run_dir


def _features(seed=1):
    return np.random.default_rng(seed).normal(size=(N, DIM))


def _noisy(feats):
    return feats + np.random.default_rng(2).normal(scale=1.0, size=feats.shape)


def _verdict(base, cand):
    (row,) = compare(load_evaluation([base]), load_evaluation([cand])).comparisons
    return row


def _frechet_slow(feats, mu_ref, cov_ref):
    """||mu - mu_ref||^2 + tr(S) + tr(S_ref) - 2 tr sqrtm(S S_ref), with scipy's general matrix square root."""
    mu, cov = feats.mean(axis=0), np.cov(feats, rowvar=False)
    return float(((mu - mu_ref) ** 2).sum() + np.trace(cov) + np.trace(cov_ref)
                 - 2.0 * np.trace(scipy.linalg.sqrtm(cov @ cov_ref).real))


def test_noisy_features_are_a_regression_on_fd_and_the_interval_is_the_joint_resampling(tmp_path, reference):
    base_feats = _features()
    base = _run(tmp_path / "base", base_feats, reference)
    cand = _run(tmp_path / "cand", _noisy(base_feats), reference)
    row = _verdict(base, cand)
    assert row.metric == "fd_mobilenet" and row.basis == PAIRED_FEATURES and row.verdict == "regression"
    assert "paired bootstrap of mobilenet features over 40 shared images against reference test-ref" in row.how

    # An explicit loop: the same image indices drawn for both runs (seed 0, as `compare`), FD of each by scipy.
    a = np.stack(store.load_features(cand)["feature"].to_numpy()).astype(np.float64)
    b = np.stack(store.load_features(base)["feature"].to_numpy()).astype(np.float64)
    mu_ref, cov_ref = reference.features.mean(axis=0), np.cov(reference.features, rowvar=False)
    index = np.random.default_rng(0).integers(0, N, size=(BOOTSTRAP_RESAMPLES, N))
    diffs = [_frechet_slow(a[i], mu_ref, cov_ref) - _frechet_slow(b[i], mu_ref, cov_ref) for i in index]
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert row.change == pytest.approx(_frechet_slow(a, mu_ref, cov_ref) - _frechet_slow(b, mu_ref, cov_ref), rel=1e-6)
    assert (row.low, row.high) == pytest.approx((low, high), rel=1e-6)
    assert row.change == pytest.approx(row.candidate - row.baseline, rel=1e-6)  # the stored values, recomputed
    assert row.n == N and low > 0


def test_the_same_features_pass(tmp_path, reference):
    feats = _features()
    row = _verdict(_run(tmp_path / "base", feats, reference), _run(tmp_path / "cand", feats, reference))
    assert row.basis == PAIRED_FEATURES and row.verdict == "unchanged" and (row.change, row.low, row.high) == (0, 0, 0)


def test_without_features_the_stored_intervals_are_compared_and_the_verdict_says_so(tmp_path, reference):
    base_feats = _features()
    base = _run(tmp_path / "base", base_feats, reference, with_features=False)
    cand = _run(tmp_path / "cand", _noisy(base_feats), reference)
    row = _verdict(base, cand)
    base_row, cand_row = (pd.read_parquet(d / "sets.parquet").iloc[0] for d in (base, cand))
    assert row.basis == STORED_INTERVALS and "no stored mobilenet features in the baseline" in row.how
    stored = (cand_row.ci_low - base_row.ci_high, cand_row.ci_high - base_row.ci_low)
    assert (row.low, row.high) == pytest.approx(stored)

    out = tmp_path / "verdict.json"
    result = CliRunner().invoke(main, ["report", str(cand), "--baseline", str(base), "--json", str(out)])
    assert result.exit_code == 1, result.output  # +1.75 [+0.36, +3.95]: worse even by the wider stored intervals
    assert "fd_mobilenet" in result.output and "stored intervals of the set-level values" in result.output
    (judged,) = [r for rows in json.loads(out.read_text()).values() if isinstance(rows, list) for r in rows]
    assert judged["basis"] == STORED_INTERVALS and judged["metric"] == "fd_mobilenet"


def test_cli_flags_the_regression_and_names_how_it_was_computed(tmp_path, reference):
    base_feats = _features()
    base = _run(tmp_path / "base", base_feats, reference)
    cand = _run(tmp_path / "cand", _noisy(base_feats), reference)
    out = tmp_path / "verdict.json"
    result = CliRunner().invoke(main, ["report", str(cand), "--baseline", str(base), "--json", str(out)])
    assert result.exit_code == 1, result.output
    assert "REGRESSION identity on synthetic-faces:test fd_mobilenet (lower is better)" in result.output
    assert "paired bootstrap of mobilenet features" in result.output
    (judged,) = json.loads(out.read_text())["regression"]
    assert judged["basis"] == PAIRED_FEATURES
    report = tmp_path / "report.md"
    written = CliRunner().invoke(main, ["report", str(cand), "--baseline", str(base), "--out", str(report)])
    assert written.exit_code == 1 and "wrote" in written.output, written.output
    assert "paired bootstrap of mobilenet features over 40 shared images" in report.read_text()


def test_another_reference_is_incomparable_and_named(tmp_path, reference):
    feats = _features()
    base = _run(tmp_path / "base", feats, reference)
    cand = _run(tmp_path / "cand", feats, reference, reference_hash="f" * 64)
    with pytest.raises(IncomparableError, match=f"fd_mobilenet \\(identity\\): baseline against reference test-ref "
                                                f"\\(content {reference.content_hash[:12]}\\), candidate against "
                                                f"reference test-ref \\(content ffffffffffff\\)"):
        compare(load_evaluation([base]), load_evaluation([cand]))
    result = CliRunner().invoke(main, ["report", str(cand), "--baseline", str(base)])
    assert result.exit_code == 2 and "candidate against reference test-ref (content ffffffffffff)" in result.output
