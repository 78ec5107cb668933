"""`lpmrf-bench compare`: the paired set-level difference of two configurations from a run's stored features.

Expected values are computed here from the stored feature vectors with scipy's `sqrtm` (FD) and clean-fid's
`kernel_distance` (KID); random MobileNetV2 weights in the published layout (`fake_mobilenet`).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from cleanfid.fid import kernel_distance as cleanfid_kernel_distance
from click.testing import CliRunner

from lpmrf_bench import store
from lpmrf_bench.cli.main import main
from lpmrf_bench.engine import RunOptions, run
from lpmrf_bench.restorers import RESTORERS, Knob, RestorerSpec
from test_ground_truth_features import pairs  # noqa: F401 (a fixture)
from test_set_metrics_run import SPEC, fake_mobilenet, scipy_fd  # noqa: F401 (a fixture)


def _noisy(weights, device):
    return lambda batch, knobs: (batch.lq + knobs["sigma"] * batch.noise(batch.lq.shape[1:], "test")).clamp(0, 1)


NOISY = RestorerSpec(name="test-noisy", load=_noisy, knobs=(Knob("sigma", float, 0.05, pd=True),), stochastic=True)
NUMBERS = r"difference (\S+), 95% interval \[(\S+), (\S+)\], n = (\d+)"


@pytest.fixture()
def compared_run(tmp_path, fake_mobilenet, pairs, monkeypatch):  # noqa: F811
    monkeypatch.setitem(RESTORERS._targets, "test-noisy", "test_compare_cli:NOISY")
    monkeypatch.setitem(RESTORERS._loaded, "test-noisy", NOISY)  # removed afterwards: other tests load their own
    data, _, _ = pairs
    run(RunOptions(methods=["identity", "test-noisy"], datasets=[data], metrics=["psnr", "fd_mobilenet", "kd_mobilenet"],
                   sweeps={"sigma": "0.1,0.3"}, set_reference="ground-truth", out=str(tmp_path / "run"), progress=False,
                   batch_size=4))
    return tmp_path / "run"


def _features(run_dir, config_id: str) -> np.ndarray:
    feats = store.load_features(run_dir, SPEC)
    rows = feats[(feats["config_id"] == config_id) & (feats["sample"] == 0)].sort_values("image_id")
    return np.stack(rows["feature"].to_numpy()).astype(np.float64)


def _compare(run_dir, *args):
    return CliRunner().invoke(main, ["compare", str(run_dir), *args])


@pytest.mark.slow
def test_compare_equals_the_independent_difference_and_its_interval_contains_it(compared_run):
    configs = store.load(compared_run).drop_duplicates("config_id")
    noisy = configs[(configs["method"] == "test-noisy") & (configs["knob_sigma"] == 0.3)]["config_id"].item()
    identity = configs[configs["method"] == "identity"]["config_id"].item()
    gt, a, b = (_features(compared_run, c) for c in (store.GROUND_TRUTH, identity, noisy))

    cli = _compare(compared_run, "--a", "identity", "--b", "test-noisy sigma=0.3", "--reference", "ground-truth")
    assert cli.exit_code == 0, cli.output
    value, low, high, n = re.search(NUMBERS, cli.output).groups()
    want = scipy_fd(a, gt) - scipy_fd(b, gt)
    assert float(value) == pytest.approx(want, rel=1e-5) and float(low) <= want <= float(high) and int(n) == 8
    assert "reference ground-truth: 8 images" in cli.output and "no restorer is loaded" in cli.output
    excludes = float(low) > 0 or float(high) < 0
    assert ("the interval excludes 0" in cli.output) == excludes and ("includes 0" in cli.output) != excludes

    cli = _compare(compared_run, "--a", noisy, "--b", "identity", "--metric", "kd_mobilenet", "--reference", "ground-truth")
    assert cli.exit_code == 0, cli.output
    value, low, high, _ = re.search(NUMBERS, cli.output).groups()
    np.random.seed(0)  # clean-fid draws its subsets from the global generator, seeded 0 like ours
    kd_b = cleanfid_kernel_distance(b, gt)
    np.random.seed(0)
    want = kd_b - cleanfid_kernel_distance(a, gt)
    assert float(value) == pytest.approx(want, rel=1e-5, abs=1e-9) and float(low) <= want <= float(high)


@pytest.mark.slow
def test_compare_errors_are_one_line_with_exit_2(compared_run, tmp_path):
    def fails(*args, text: str) -> None:
        cli = _compare(*args)
        assert cli.exit_code == 2 and text in cli.output, cli.output
        assert "Traceback" not in cli.output and len(cli.output.strip().splitlines()) == 1, cli.output

    fails(compared_run, "--a", "nope", "--b", "identity", text="no configuration 'nope' in this run; its configurations: ")
    cli = _compare(compared_run, "--a", "nope", "--b", "identity")
    assert "identity (" in cli.output and "test-noisy sigma=0.1 (" in cli.output and "test-noisy sigma=0.3 (" in cli.output
    fails(compared_run, "--a", "test-noisy", "--b", "identity", text="'test-noisy' matches 2 configurations")
    fails(compared_run, "--a", "identity", "--b", "test-noisy sigma=0.1", "--metric", "fid",
          text="no inception features of configuration")
    fails(compared_run, "--a", "identity", "--b", "test-noisy sigma=0.1", "--reference", "absent-ref",
          text="lpmrf-bench ref-stats absent-ref")
    fails(compared_run, "--a", "identity", "--b", "test-noisy sigma=0.1", "--metric", "psnr",
          text="--metric psnr: not a set-level metric")
    fails(compared_run, "--a", "identity", "--b", "test-noisy sigma=0.1", "--dataset", "elsewhere:all",
          text="--dataset elsewhere:all matches 0")
    fails(tmp_path / "no-run", "--a", "x", "--b", "y", text="not a run directory")
