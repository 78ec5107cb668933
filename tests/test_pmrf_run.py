"""PMRF through the whole engine: tiny weights of ours, the synthetic faces, a sweep over K, samples, IndRMSE."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from _pmrf_tiny import randomize
from lpmrf_bench.cli.main import main
from lpmrf_bench.models.pmrf_loading import PMRFNetworks, PMRFSettings, save_pmrf
from lpmrf_bench.models.swinir import SwinIR
from lpmrf_bench.store import load

TINY_64 = PMRFSettings(flow_arch="hdit_tiny", mmse_arch="swinir_tiny", input_size=64)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    return str(save_pmrf(tmp_path_factory.mktemp("pmrf") / "tiny64", randomize(PMRFNetworks(TINY_64), 3)))


def _run(out, weights, *extra):
    args = ["run", "--methods", "pmrf", "--datasets", "synthetic-faces", "--limit", "6", "--weights",
            f"pmrf={weights}", "--out", str(out), "--no-progress", "--metrics", "psnr", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return load(out)


@pytest.mark.slow
def test_sweep_reuses_the_posterior_mean_and_seeds_do_not_depend_on_batching(tmp_path, weights, monkeypatch):
    calls = []
    original = SwinIR.forward
    monkeypatch.setattr(SwinIR, "forward", lambda self, x: calls.append(x.shape[0]) or original(self, x))
    rows = _run(tmp_path / "a", weights, "--sweep", "steps=1,3", "--samples", "2")
    assert calls == [6]  # one batch: the posterior mean once for 2 K values x 2 samples
    assert sorted(rows["knob_steps"].unique()) == [1, 3] and sorted(rows["sample"].unique()) == [0, 1]
    assert str(pd.read_parquet(tmp_path / "a" / "sets.parquet")["knob_steps"].dtype) == "Int64"
    assert rows.groupby(["knob_steps", "sample"]).size().tolist() == [6, 6, 6, 6]
    wide = rows.pivot_table(index="image_id", columns=["knob_steps", "sample"], values="value")
    assert (wide[(1, 0)] != wide[(3, 0)]).all() and (wide[(3, 0)] != wide[(3, 1)]).all()
    again = _run(tmp_path / "b", weights, "--sweep", "steps=1,3", "--samples", "2", "--batch-size", "1")
    key = ["knob_steps", "sample", "image_id"]
    pd.testing.assert_frame_equal(rows.sort_values(key)[[*key, "value"]].reset_index(drop=True),
                                  again.sort_values(key)[[*key, "value"]].reset_index(drop=True))


@pytest.mark.slow
def test_indrmse_against_the_posterior_mean(tmp_path, weights):
    args = ["run", "--methods", "pmrf,posterior-mean", "--datasets", "synthetic-faces", "--limit", "4",
            "--weights", f"pmrf={weights}", "--weights", f"posterior-mean={weights}", "--set", "steps=2",
            "--metrics", "psnr,indrmse", "--out", str(tmp_path / "r"), "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = load(tmp_path / "r")
    ind = rows[rows.metric == "indrmse"].groupby("method")["value"]
    assert (ind.get_group("posterior-mean") == 0).all()  # the reference itself
    assert (ind.get_group("pmrf") > 0).all()
    sets = pd.read_parquet(tmp_path / "r" / "sets.parquet").set_index(["method", "metric"])
    per_image = ind.get_group("pmrf").to_numpy()
    assert sets.loc[("pmrf", "indrmse"), "value"] == pytest.approx(np.sqrt(np.mean(per_image**2)))
