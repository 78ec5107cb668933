"""The perception-distortion chart: points are the stored set values, PD sweeps are curves in knob order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lpmrf_bench.cli.main import main
from lpmrf_bench.imageio import write_png
from lpmrf_bench.plots import pd_tradeoff
from lpmrf_bench.restorers import RESTORERS


@pytest.fixture()
def run_dir(tmp_path, photo_pairs, monkeypatch):
    monkeypatch.setitem(RESTORERS._targets, "test-scale", "test_run_cli:SCALE")
    for name, degraded, clean in photo_pairs:
        write_png(tmp_path / "pairs" / "lq" / f"{name}.png", degraded)
        write_png(tmp_path / "pairs" / "gt" / f"{name}.png", clean)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--methods", "test-scale,identity", "--datasets", str(tmp_path / "pairs"),
                                       "--sweep", "gain=1.0,0.8,0.9", "--metrics", "psnr,ssim", "--out", str(out),
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_points_are_the_set_values_and_the_sweep_is_a_curve_in_knob_order(run_dir):
    sets = pd.read_parquet(run_dir / "sets.parquet")
    figure = pd_tradeoff(sets, "psnr", "ssim")
    ax = figure.axes[0]
    curves = {text.get_text() for text in ax.texts}
    assert curves == {"gain=0.8", "gain=0.9", "gain=1.0"}
    scale = sets[sets.method == "test-scale"].pivot_table(index="knob_gain", columns="metric", values="value")
    lines = {container.get_label(): container.lines[0] for container in ax.containers}  # the data line of each
    line = lines["test-scale"]
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), scale["psnr"].to_numpy())  # gain 0.8, 0.9, 1.0
    np.testing.assert_allclose(np.asarray(line.get_ydata(), float), scale["ssim"].to_numpy())
    assert lines["identity"].get_linestyle() == "None"  # a single configuration is a point, not a curve
    assert line.get_linestyle() == "-"
    assert "higher is better" in ax.get_xlabel() and "psnr/rgb-255-f64/pmrf-v1" in ax.get_xlabel()


def test_cli_writes_the_chart_and_explains_bad_requests(run_dir):
    runner = CliRunner()
    done = runner.invoke(main, ["plot", "pd-tradeoff", str(run_dir), "--y", "ssim"])
    assert done.exit_code == 0, done.output
    png = run_dir / "pd-tradeoff.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    missing = runner.invoke(main, ["plot", "pd-tradeoff", str(run_dir), "--y", "lpips"])
    assert missing.exit_code == 1 and "no 'lpips' values" in missing.output
    no_default = runner.invoke(main, ["plot", "pd-tradeoff", str(run_dir)])
    assert no_default.exit_code == 1 and "no perception metric in this run" in no_default.output


def test_mixed_specs_are_refused():
    sets = pd.DataFrame({"config_id": ["a", "a", "b", "b"], "method": "m", "dataset": "d", "split": "s",
                         "metric": ["psnr", "ssim", "psnr", "ssim"],
                         "spec": ["psnr/x", "ssim/rgb/pmrf-v1", "psnr/x", "ssim/yiq/pyiqa-v1"],
                         "value": [20.0, 0.5, 21.0, 0.6], "ci_low": 0.0, "ci_high": 30.0})
    with pytest.raises(ValueError, match="different specs"):
        pd_tradeoff(sets, "psnr", "ssim")
