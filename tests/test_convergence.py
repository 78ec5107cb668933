"""Steps-to-match read off validation curves, checked on the Latent-PMRF paper's own curves (FACTS.md)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lpmrf_bench.cli.main import main
from lpmrf_bench.convergence import PROGRESS_AXES, progress_to_reach, speedup

STEPS = np.arange(40_000, 400_001, 40_000)
PMRF = [68.75, 67.70, 68.74, 68.08, 66.69, 64.92, 64.18, 63.9, 63.38, 65.06]
LATENT = [65.31, 61.77, 63.13, 61.17, 60.31, 58.49, 58.61, 57.7, 58.23, 58.88]


def curve(values) -> pd.DataFrame:
    return pd.DataFrame({"step": STEPS, "value": values})


def test_paper_reading_pmrf_needs_5_78x_the_steps():
    result = speedup(curve(PMRF), curve(LATENT))
    by_hand = 200_000 + (66.69 - 65.31) / (66.69 - 64.92) * 40_000  # between the 200k and 240k readings
    assert result.target == 65.31 and result.candidate_step == 40_000
    assert result.baseline_at == pytest.approx(by_hand) and result.candidate_at == 40_000
    assert result.ratio == pytest.approx(5.78, abs=0.005)


def test_never_reached_and_direction():
    assert speedup(curve(PMRF), curve(LATENT), at_step=200_000).baseline_at is None  # 60.31 is never reached
    assert progress_to_reach(STEPS, np.array(PMRF), 70.0) == 40_000  # already there at the first log
    assert progress_to_reach(STEPS, -np.array(PMRF), -66.0, lower_is_better=False) == pytest.approx(
        200_000 + (66.69 - 66.0) / (66.69 - 64.92) * 40_000)
    with pytest.raises(ValueError, match="no value at step 50000"):
        speedup(curve(PMRF), curve(LATENT), at_step=50_000)


# The pixel flow's step costs half the latent flow's here: 0.1 s against 0.2 s of training per step.
PMRF_STEP_S, LATENT_STEP_S = 0.1, 0.2


def test_the_same_reading_in_training_time_and_images():
    base = curve(PMRF).assign(wall_s=STEPS * PMRF_STEP_S, images_seen=STEPS * 256)
    cand = curve(LATENT).assign(wall_s=STEPS * LATENT_STEP_S + 7.0, images_seen=STEPS * 128)
    base_step = 200_000 + (66.69 - 65.31) / (66.69 - 64.92) * 40_000  # as in the step reading above
    wall = speedup(base, cand, axis="wall")
    assert wall.candidate_step == 40_000 and wall.candidate_at == 40_000 * LATENT_STEP_S + 7.0
    assert wall.baseline_at == pytest.approx(base_step * PMRF_STEP_S)  # wall is linear in steps here
    assert wall.ratio == pytest.approx(base_step * PMRF_STEP_S / 8007.0)
    images = speedup(base, cand, axis="images")
    assert images.ratio == pytest.approx(base_step * 256 / (40_000 * 128))
    with pytest.raises(ValueError, match="must be one of step, wall, images"):
        speedup(base, cand, axis="epochs")


def test_cli_reads_convergence_logs(tmp_path):
    pmrf, latent = _logs(tmp_path)
    result = CliRunner().invoke(main, ["speedup", str(pmrf), str(latent)])
    assert result.exit_code == 0, result.output
    assert "step 231186.4: 5.78x the steps" in result.output
    wall = CliRunner().invoke(main, ["speedup", str(pmrf), str(latent), "--x", "wall"])
    assert wall.exit_code == 0, wall.output
    base_wall, cand_wall = 231186.44 * PMRF_STEP_S, 40_000 * LATENT_STEP_S
    assert (f"latent-pmrf reaches fid 65.31 at step 40000 ({cand_wall:.1f} s of training); pmrf first reaches it at "
            f"{base_wall:.1f} s of training: {base_wall / cand_wall:.2f}x the training time") in wall.output
    never = CliRunner().invoke(main, ["speedup", str(pmrf), str(latent), "--at-step", "200000"])
    assert never.exit_code == 0 and "pmrf never reaches it within its logged steps (up to step 400000.0)" in never.output
    missing = CliRunner().invoke(main, ["speedup", str(pmrf), str(tmp_path)])
    assert missing.exit_code == 1 and "has no convergence.parquet" in missing.output


def _logs(tmp_path):
    for name, values, step_s in (("pmrf", PMRF, PMRF_STEP_S), ("latent-pmrf", LATENT, LATENT_STEP_S)):
        (tmp_path / name).mkdir()
        pd.DataFrame({"run_id": name, "step": STEPS, "wall_s": STEPS * step_s, "images_seen": STEPS * 256,
                      "metric": "fid", "spec": "fid/test-features/test-v1", "value": values, "n": 1000}).to_parquet(
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
    assert wall.exit_code == 0, wall.output
    assert f"{231186.44 * PMRF_STEP_S / (40_000 * LATENT_STEP_S):.2f}x the training time" in wall.output
    never = CliRunner().invoke(main, ["plot", "convergence", str(pmrf), str(latent), "--at-step", "200000", "--out", str(out)])
    assert never.exit_code == 0 and "pmrf never reaches it within its logged steps (up to step 400000.0)" in never.output


def test_the_wall_chart_draws_its_arrow_in_seconds():
    from lpmrf_bench.convergence_plot import convergence_chart

    curves = {name: curve(values).assign(metric="fid", spec="fid/x", wall_s=STEPS * step_s, images_seen=0)
              for name, values, step_s in (("pmrf", PMRF, PMRF_STEP_S), ("latent-pmrf", LATENT, LATENT_STEP_S))}
    figure, _ = convergence_chart(curves, "fid", x="wall")
    ax = figure.axes[0]
    arrow = next(t for t in ax.texts if t.arrow_patch is not None)
    assert arrow.xy == pytest.approx((231186.44 * PMRF_STEP_S, 65.31), abs=0.01)
    assert arrow.xyann == pytest.approx((40_000 * LATENT_STEP_S, 65.31))
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), STEPS * LATENT_STEP_S)


def test_the_cli_offers_exactly_the_progress_axes():
    from lpmrf_bench.cli.speedup import speedup_command

    choices = next(p for p in speedup_command.params if p.name == "x").type.choices
    assert list(choices) == list(PROGRESS_AXES)


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
