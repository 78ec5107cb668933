"""Regression verdicts: a worsened method fails, reruns pass, incomparable runs are named (exit 1 / 0 / 2)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torchvision.transforms.functional as TF
from click.testing import CliRunner
from scipy import stats

from lpmrf_bench.cli.main import main
from lpmrf_bench.intervals import paired_statistic_difference
from lpmrf_bench.regression import Evaluation, IncomparableError, classify, compare, parse_tolerances
from lpmrf_bench.restorers import RESTORERS, RestorerSpec

PSNR = "psnr/rgb-255-f64/pmrf-v1"


def _blurred(weights, device):
    return lambda batch, knobs: TF.gaussian_blur(batch.lq, kernel_size=[7, 7], sigma=[1.0, 1.0])


def _noisy(weights, device):
    return lambda batch, knobs: (batch.lq + 0.02 * batch.noise(batch.lq.shape[1:], "test")).clamp(0, 1)


BLURRED_IDENTITY = RestorerSpec(name="identity", load=_blurred)  # the identity output blurred by sigma 1
NOISY = RestorerSpec(name="test-noisy", load=_noisy, stochastic=True)


def test_joint_bootstrap_matches_scipy_paired_percentile_bootstrap():
    rng = np.random.default_rng(3)
    a = rng.normal(25.0, 2.0, 400)
    b = a - 0.3 + rng.normal(0, 0.5, 400)
    median_diff = lambda x, y: np.median(x) - np.median(y)  # noqa: E731 (a reduction that is not a mean)
    ours = paired_statistic_difference(a, b, np.median, resamples=4000)
    ref = stats.bootstrap((a, b), median_diff, paired=True, vectorized=False, n_resamples=4000, method="percentile",
                          random_state=0).confidence_interval
    assert ours.value == pytest.approx(median_diff(a, b))
    assert ours.low == pytest.approx(ref.low, abs=0.03) and ours.high == pytest.approx(ref.high, abs=0.03)


@pytest.mark.parametrize(("low", "high", "higher", "verdict"), [
    (-0.5, -0.2, True, "regression"), (-0.5, -0.02, True, "unchanged"), (0.2, 0.5, True, "improvement"),
    (0.2, 0.5, False, "regression"), (-0.5, -0.2, False, "improvement"), (-0.1, 0.1, True, "unchanged"),
    (float("nan"), 0.1, True, "undetermined"),
])
def test_classify_is_direction_aware_beyond_the_tolerance(low, high, higher, verdict):
    assert classify(low, high, higher, tolerance=0.05) == verdict


def _sets(value, low, high, spec=PSNR):
    return pd.DataFrame({"config": ["m"], "dataset": ["d"], "split": ["s"], "metric": ["psnr"], "spec": [spec],
                         "value": [value], "ci_low": [low], "ci_high": [high], "n": [100]})


NO_VALUES = pd.DataFrame(columns=["config", "dataset", "split", "image_id", "metric", "spec", "value"])


def test_set_level_rows_without_per_image_values_compare_stored_intervals():
    verdict = compare(Evaluation(_sets(25.0, 24.8, 25.2), NO_VALUES), Evaluation(_sets(24.0, 23.8, 24.2), NO_VALUES))
    (row,) = verdict.comparisons
    assert (row.change, row.low, row.high) == pytest.approx((-1.0, -1.4, -0.6))
    assert row.verdict == "regression" and "stored intervals" in row.how and verdict.exit_status == 1
    overlapping = compare(Evaluation(_sets(25.0, 24.8, 25.2), NO_VALUES), Evaluation(_sets(24.9, 24.7, 25.1), NO_VALUES))
    assert overlapping.comparisons[0].verdict == "unchanged"
    with pytest.raises(IncomparableError, match="metric psnr: baseline spec psnr/x, candidate spec psnr/y"):
        compare(Evaluation(_sets(1, 0, 2, "psnr/x"), NO_VALUES), Evaluation(_sets(1, 0, 2, "psnr/y"), NO_VALUES))


def test_tolerances_parse_and_refuse_nonsense():
    assert parse_tolerances(["psnr=0.1", "ssim=0"]) == {"psnr": 0.1, "ssim": 0.0}
    for bad in ("psnr", "psnr=-1", "=0.1", "psnr=abc"):
        with pytest.raises(ValueError, match="METRIC=NON_NEGATIVE_NUMBER"):
            parse_tolerances([bad])


def _run(out, *extra, seed=0, limit=48):
    result = CliRunner().invoke(main, ["run", "--methods", "identity,test-noisy", "--datasets", "synthetic-faces:test",
                                       "--limit", str(limit), "--metrics", "psnr,ssim", "--seed", str(seed),
                                       "--out", str(out), "--no-progress", *extra])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("regression")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(RESTORERS._targets, "test-noisy", "test_regression:NOISY")
        made = {"base": _run(root / "base"), "rerun": _run(root / "rerun"), "seed1": _run(root / "seed1", seed=1),
                "fewer": _run(root / "fewer", limit=40), "pyiqa": _run(root / "pyiqa", "--protocol", "pyiqa")}
        patch.setitem(RESTORERS._loaded, "identity", BLURRED_IDENTITY)  # the registry caches what it loaded
        made["blurred"] = _run(root / "blurred")
    return made


def _report(runs, candidate, *extra):
    return CliRunner().invoke(main, ["report", str(runs[candidate]), "--baseline", str(runs["base"]), *extra])


@pytest.mark.slow
def test_blurred_identity_is_a_regression_naming_the_metric(runs, tmp_path):
    verdict_path = tmp_path / "verdict.json"
    result = _report(runs, "blurred", "--json", str(verdict_path))
    assert result.exit_code == 1, result.output
    assert "REGRESSION identity on synthetic-faces:test psnr (higher is better)" in result.output
    verdict = json.loads(verdict_path.read_text())
    assert verdict["exit_status"] == 1
    assert {(r["config"], r["metric"]) for r in verdict["regression"]} >= {("identity", "psnr")}
    assert all(r["config"] == "identity" for r in verdict["regression"])
    assert {r["config"] for r in verdict["unchanged"]} == {"test-noisy"}
    psnr = next(r for r in verdict["regression"] if r["metric"] == "psnr")
    base = pd.read_parquet(runs["base"] / "sets.parquet").query("method == 'identity' and metric == 'psnr'")
    cand = pd.read_parquet(runs["blurred"] / "sets.parquet").query("method == 'identity' and metric == 'psnr'")
    assert psnr["change"] == pytest.approx(cand["value"].iloc[0] - base["value"].iloc[0])
    assert psnr["n"] == 48 and psnr["high"] < -0.05


@pytest.mark.slow
def test_unchanged_rerun_and_another_seed_of_a_stochastic_method_pass(runs):
    same = _report(runs, "rerun")
    assert same.exit_code == 0, same.output
    assert "0 regression(s), 0 improvement(s), 4 unchanged" in same.output
    other_seed = _report(runs, "seed1")
    assert other_seed.exit_code == 0, other_seed.output
    noisy = pd.read_parquet(runs["seed1"] / "metrics").query("method == 'test-noisy'")["value"].to_numpy()
    assert not np.array_equal(noisy, pd.read_parquet(runs["base"] / "metrics").query("method == 'test-noisy'")["value"])


@pytest.mark.slow
def test_other_images_or_specs_are_incomparable_and_named(runs, tmp_path):
    verdict_path = tmp_path / "verdict.json"
    fewer = _report(runs, "fewer", "--json", str(verdict_path))
    assert fewer.exit_code == 2
    assert "synthetic-faces:test: different images (8 only in the baseline" in fewer.output
    verdict = json.loads(verdict_path.read_text())
    assert verdict["exit_status"] == 2 and verdict["incomparable"][0].startswith("synthetic-faces:test: different images")
    pyiqa = _report(runs, "pyiqa")
    assert pyiqa.exit_code == 2
    assert "metric psnr: baseline spec psnr/rgb-255-f64/pmrf-v1, candidate spec psnr/rgb-01-eps1e-8/pyiqa-v1" in pyiqa.output
    missing = CliRunner().invoke(main, ["report", str(runs["base"]), "--baseline", str(runs["base"] / "metrics")])
    assert missing.exit_code == 2 and "has no sets.parquet" in missing.output


def test_report_options_are_checked(tmp_path):
    (tmp_path / "sets.parquet").write_bytes(b"")
    runner = CliRunner()
    assert runner.invoke(main, ["report", str(tmp_path), "--json", "v.json"]).exit_code == 2
    bad_out = runner.invoke(main, ["report", str(tmp_path), "--out", "r.pdf"])
    assert bad_out.exit_code == 2 and "--out must end in .html or .md" in bad_out.output
    not_a_run = runner.invoke(main, ["report", str(tmp_path / "..")])
    assert not_a_run.exit_code == 2 and "not a run directory" in not_a_run.output


def test_set_level_specs_have_a_known_direction():
    from lpmrf_bench import regression
    from lpmrf_bench.metrics.setlevel import SET_METRICS

    assert regression._metric(SET_METRICS["fd_mobilenet"].spec) is SET_METRICS["fd_mobilenet"]
    assert regression._metric(SET_METRICS["fd_mobilenet"].spec).higher_is_better is False
    assert regression._metric("fd_mobilenet/some-other-extractor/v1") is None
    from lpmrf_bench.report.tables import _direction  # the report's column arrows use the same lookup

    assert _direction(SET_METRICS["fd_mobilenet"].spec) == "lower" and _direction(SET_METRICS["recall"].spec) == "higher"
