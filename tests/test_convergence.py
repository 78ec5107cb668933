"""Steps-to-match read off validation curves, checked on the Latent-PMRF paper's own curves (FACTS.md)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lpmrf_bench.cli.main import main
from lpmrf_bench.convergence import speedup, steps_to_reach

STEPS = np.arange(40_000, 400_001, 40_000)
PMRF = [68.75, 67.70, 68.74, 68.08, 66.69, 64.92, 64.18, 63.9, 63.38, 65.06]
LATENT = [65.31, 61.77, 63.13, 61.17, 60.31, 58.49, 58.61, 57.7, 58.23, 58.88]


def curve(values) -> pd.DataFrame:
    return pd.DataFrame({"step": STEPS, "value": values})


def test_paper_reading_pmrf_needs_5_78x_the_steps():
    result = speedup(curve(PMRF), curve(LATENT))
    by_hand = 200_000 + (66.69 - 65.31) / (66.69 - 64.92) * 40_000  # between the 200k and 240k readings
    assert result.target == 65.31 and result.candidate_step == 40_000
    assert result.baseline_step == pytest.approx(by_hand)
    assert result.ratio == pytest.approx(5.78, abs=0.005)


def test_never_reached_and_direction():
    assert speedup(curve(PMRF), curve(LATENT), at_step=200_000).baseline_step is None  # 60.31 is never reached
    assert steps_to_reach(STEPS, np.array(PMRF), 70.0) == 40_000  # already there at the first log
    assert steps_to_reach(STEPS, -np.array(PMRF), -66.0, lower_is_better=False) == pytest.approx(
        200_000 + (66.69 - 66.0) / (66.69 - 64.92) * 40_000)
    with pytest.raises(ValueError, match="no value at step 50000"):
        speedup(curve(PMRF), curve(LATENT), at_step=50_000)


def test_cli_reads_convergence_logs(tmp_path):
    pmrf, latent = _logs(tmp_path)
    result = CliRunner().invoke(main, ["speedup", str(pmrf), str(latent)])
    assert result.exit_code == 0, result.output
    assert "step 231186.4: 5.78x the steps" in result.output
    missing = CliRunner().invoke(main, ["speedup", str(pmrf), str(tmp_path)])
    assert missing.exit_code == 1 and "has no convergence.parquet" in missing.output


def _logs(tmp_path):
    for name, values in (("pmrf", PMRF), ("latent-pmrf", LATENT)):
        (tmp_path / name).mkdir()
        pd.DataFrame({"run_id": name, "step": STEPS, "wall_s": STEPS / 10.0, "images_seen": STEPS * 256, "metric": "fid",
                      "spec": "fid/test-features/test-v1", "value": values, "n": 1000}).to_parquet(
            tmp_path / name / "convergence.parquet")
    return tmp_path / "pmrf", tmp_path / "latent-pmrf"


def test_convergence_chart_draws_the_paper_arrow(tmp_path):
    from lpmrf_bench.convergence_plot import convergence_chart

    curves = {"pmrf": curve(PMRF).assign(metric="fid", spec="fid/x", wall_s=0.0, images_seen=0),
              "latent-pmrf": curve(LATENT).assign(metric="fid", spec="fid/x", wall_s=0.0, images_seen=0)}
    figure, readings = convergence_chart(curves, "fid")
    ax = figure.axes[0]
    arrow = next(t for t in ax.texts if t.arrow_patch is not None)
    by_hand = 200_000 + (66.69 - 65.31) / (66.69 - 64.92) * 40_000
    assert arrow.xy == pytest.approx((by_hand, 65.31)) and arrow.xyann == pytest.approx((40_000, 65.31))
    assert "5.78x" in {t.get_text() for t in ax.texts}
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), PMRF)
    assert readings[0][0] == "latent-pmrf" and readings[0][1].ratio == pytest.approx(5.78, abs=0.005)


def test_plot_convergence_cli(tmp_path):
    pmrf, latent = _logs(tmp_path)
    out = tmp_path / "conv.png"
    done = CliRunner().invoke(main, ["plot", "convergence", str(pmrf), str(latent), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "latent-pmrf reaches fid 65.31 at step 40000; pmrf first reaches it at step 231186.4: 5.78x the steps" in done.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wall = CliRunner().invoke(main, ["plot", "convergence", str(pmrf), str(latent), "--x", "wall", "--out", str(out)])
    assert wall.exit_code == 0 and "x the steps" not in wall.output  # the ratio is one of steps: no arrow on time
    never = CliRunner().invoke(main, ["plot", "convergence", str(pmrf), str(latent), "--at-step", "200000", "--out", str(out)])
    assert never.exit_code == 0 and "pmrf never reaches it" in never.output


def test_logs_under_different_specs_exit_2_naming_the_spec(tmp_path):
    pmrf, latent = _logs(tmp_path)
    log = pd.read_parquet(latent / "convergence.parquet").assign(spec="fid/other-features/test-v1")
    log.to_parquet(latent / "convergence.parquet")
    out = tmp_path / "conv.png"
    for command in (["plot", "convergence", str(pmrf), str(latent), "--out", str(out)],
                    ["speedup", str(pmrf), str(latent)]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        assert "different specs (fid: fid/other-features/test-v1, fid/test-features/test-v1)" in result.output
    assert not out.exists()
