"""The perception-distortion chart: points are the stored set values, PD sweeps are curves in knob order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import write_pairs
from lpmrf_bench.cli.main import main
from lpmrf_bench.metrics.setlevel import SET_METRICS
from lpmrf_bench.plots import pd_tradeoff
from lpmrf_bench.restorers import RESTORERS


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, photo_pairs):
    root = tmp_path_factory.mktemp("plots")
    write_pairs(root / "pairs", photo_pairs)
    out = root / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(RESTORERS._targets, "test-scale", "test_run_cli:SCALE")
        result = CliRunner().invoke(main, ["run", "--methods", "test-scale,identity", "--datasets", str(root / "pairs"),
                                           "--sweep", "gain=1.0,0.8,0.9", "--metrics", "psnr,ssim", "--out", str(out),
                                           "--no-progress"])
        assert result.exit_code == 0, result.output
        yield out  # the test method stays registered while the charts look up its PD knob


@pytest.mark.slow
def test_points_are_the_set_values_and_the_sweep_is_a_curve_in_knob_order(run_dir):
    sets = pd.read_parquet(run_dir / "sets.parquet")
    figure = pd_tradeoff(sets, "psnr", "ssim")
    ax = figure.axes[0]
    curves = {text.get_text() for text in ax.texts}
    assert curves == {"gain=0.8", "gain=0.9", "gain=1"}  # an integral value prints as an integer
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
    assert no_default.exit_code == 1 and "no perception metric in the run(s)" in no_default.output


def test_mixed_specs_are_refused():
    sets = pd.DataFrame({"config_id": ["a", "a", "b", "b"], "method": "m", "dataset": "d", "split": "s",
                         "metric": ["psnr", "ssim", "psnr", "ssim"],
                         "spec": ["psnr/x", "ssim/rgb/pmrf-v1", "psnr/x", "ssim/yiq/pyiqa-v1"],
                         "value": [20.0, 0.5, 21.0, 0.6], "ci_low": 0.0, "ci_high": 30.0})
    with pytest.raises(ValueError, match="different specs"):
        pd_tradeoff(sets, "psnr", "ssim")


LPIPS = "lpips/vgg-v0.1/pmrf-v1"  # registered: lower is better
PSNR = "psnr/rgb-255-f64/pmrf-v1"


def _two_runs() -> pd.DataFrame:
    """Hand-made set values: pmrf swept over steps in run A, identity in runs A and B, two datasets."""
    rows = []
    points = {("A", "pmrf", 1): (27.0, 0.40), ("A", "pmrf", 5): (26.0, 0.30), ("A", "pmrf", 25): (25.0, 0.33),
              ("A", "identity", None): (22.0, 0.50), ("B", "identity", None): (23.0, 0.45)}
    for dataset, shift in (("celeba-test", 0.0), ("lfw-test", -1.0)):
        for (run, method, steps), (psnr, lpips) in points.items():
            for metric, spec, value in (("psnr", PSNR, psnr + shift), ("lpips", LPIPS, lpips)):
                rows.append({"run": run, "config_id": f"{method}{steps}", "method": method, "knob_steps": steps,
                             "dataset": dataset, "split": "test", "metric": metric, "spec": spec, "value": value,
                             "ci_low": value - 0.01, "ci_high": value + 0.01})
    frame = pd.DataFrame(rows)
    frame["knob_steps"] = frame["knob_steps"].astype("Int64")
    return frame


def test_runs_side_by_side_panels_per_dataset_pareto_frontier_and_oriented_axes():
    sets = _two_runs()
    figure = pd_tradeoff(sets, "psnr", "lpips", "all")
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["perception-distortion: celeba-test:test", "perception-distortion: lfw-test:test"]
    ax = panels[0]
    assert ax.yaxis_inverted() and not ax.xaxis_inverted()  # lower LPIPS is better: up is better on both axes
    assert "lower is better, axis reversed: better is up" in ax.get_ylabel()
    labels = {c.get_label() for c in ax.containers}
    assert labels == {"pmrf", "identity (A)", "identity (B)"}
    assert {t.get_text() for t in ax.texts} == {"steps=1", "steps=5", "steps=25"}
    frontier = next(line for line in ax.get_lines() if line.get_label() == "Pareto frontier")
    celeba = sets[sets.dataset == "celeba-test"].pivot_table(index=["run", "config_id"], columns="metric", values="value")
    expected = []
    for i, (p, l) in enumerate(zip(celeba["psnr"], celeba["lpips"])):  # brute force: no point at least as good on both
        beaten = any(p2 >= p and l2 <= l and (p2 > p or l2 < l) for j, (p2, l2) in enumerate(zip(celeba["psnr"], celeba["lpips"])) if j != i)
        if not beaten:
            expected.append((p, l))
    assert sorted(zip(frontier.get_xdata(), frontier.get_ydata())) == sorted(expected) == [(26.0, 0.30), (27.0, 0.40)]


def test_runs_with_different_specs_are_refused():
    sets = _two_runs()
    sets.loc[(sets.run == "B") & (sets.metric == "psnr"), "spec"] = "psnr/rgb-01-eps1e-8/pyiqa-v1"
    with pytest.raises(ValueError, match="different specs"):
        pd_tradeoff(sets, "psnr", "lpips", "all")


def test_cli_runs_with_different_specs_exit_2_naming_the_spec(tmp_path):
    sets = _two_runs()
    sets.loc[(sets.run == "B") & (sets.metric == "psnr"), "spec"] = "psnr/rgb-01-eps1e-8/pyiqa-v1"
    for run, rows in sets.groupby("run"):
        (tmp_path / run).mkdir()
        rows.to_parquet(tmp_path / run / "sets.parquet")
    result = CliRunner().invoke(main, ["plot", "pd-tradeoff", str(tmp_path / "A"), str(tmp_path / "B"), "--y", "lpips",
                                       "--dataset", "all", "--out", str(tmp_path / "chart.png")])
    assert result.exit_code == 2, result.output
    assert "different specs (psnr: psnr/rgb-01-eps1e-8/pyiqa-v1, psnr/rgb-255-f64/pmrf-v1)" in result.output
    assert not (tmp_path / "chart.png").exists()


@pytest.mark.slow
def test_cli_several_runs_and_vector_formats(run_dir, tmp_path):
    runner = CliRunner()
    for suffix, magic in ((".svg", b"<?xml"), (".pdf", b"%PDF")):
        out = tmp_path / f"chart{suffix}"
        done = runner.invoke(main, ["plot", "pd-tradeoff", str(run_dir), str(run_dir), "--y", "ssim", "--out", str(out)])
        assert done.exit_code == 0, done.output
        assert out.read_bytes().startswith(magic)
    bad = runner.invoke(main, ["plot", "pd-tradeoff", str(run_dir), "--y", "ssim", "--out", str(tmp_path / "c.jpg")])
    assert bad.exit_code == 2 and "--out must end in .png, .svg or .pdf" in bad.output


@pytest.mark.slow
def test_splits_of_one_dataset_are_separate_panels():
    sets = _two_runs()
    sets.loc[sets.dataset == "lfw-test", ["dataset", "split"]] = ["celeba-test", "val"]
    figure = pd_tradeoff(sets, "psnr", "lpips", "all")
    assert [ax.get_title() for ax in figure.axes] == ["perception-distortion: celeba-test:test",
                                                      "perception-distortion: celeba-test:val"]
    assert len(figure.axes[1].containers) == 3 and len(figure.axes[1].containers[2].lines[0].get_xdata()) == 3
    with pytest.raises(ValueError, match="several datasets; choose one with --dataset NAME:SPLIT"):
        pd_tradeoff(sets, "psnr", "lpips", "celeba-test")
    assert pd_tradeoff(sets, "psnr", "lpips", "celeba-test:val").axes[0].get_title().endswith("celeba-test:val")


def test_fd_mobilenet_is_the_default_perception_axis_and_lower_is_better():
    sets = _two_runs()
    fd = sets[sets["metric"] == "lpips"].assign(metric="fd_mobilenet", spec=SET_METRICS["fd_mobilenet"].spec)
    figure = pd_tradeoff(pd.concat([sets[sets["metric"] == "psnr"], fd]), "psnr", None, "celeba-test")
    ax = next(ax for ax in figure.axes if ax.get_visible())
    assert "fd_mobilenet (lower is better, axis reversed: better is up)" in ax.get_ylabel() and ax.yaxis_inverted()


def test_clustered_sweep_labels_never_overlap_and_the_curve_ends_keep_theirs():
    """Five K points within a few hundredths (latent-pmrf's sweep): labels are placed, not piled up."""
    rows = []
    for steps, psnr, lpips in ((1, 26.42, 0.300), (2, 26.40, 0.301), (5, 26.41, 0.299), (10, 26.39, 0.300),
                               (25, 26.40, 0.2995)):
        for metric, spec, value in (("psnr", PSNR, psnr), ("lpips", LPIPS, lpips)):
            rows.append({"config_id": f"k{steps}", "method": "pmrf", "knob_steps": steps, "dataset": "d",
                         "split": "test", "metric": metric, "spec": spec, "value": value, "ci_low": value - 0.2,
                         "ci_high": value + 0.2})
    rows += [{**row, "config_id": "id", "method": "identity", "knob_steps": None,
              "value": row["value"] + (-3 if row["metric"] == "psnr" else 0.2)} for row in rows[:2]]
    sets = pd.DataFrame(rows)
    sets["knob_steps"] = sets["knob_steps"].astype("Int64")
    figure = pd_tradeoff(sets, "psnr", "lpips")
    ax = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    texts = {t.get_text() for t in ax.texts}
    assert {"steps=1", "steps=25"} <= texts and len(texts) < 5  # the ends first; some middle labels left out
    boxes = [t.get_window_extent(renderer) for t in ax.texts] + [ax.get_legend().get_window_extent(renderer)]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_a_label_keeps_off_the_other_points_markers():
    """steps=2 sits just right of and above steps=1, where that label goes first: the label moves."""
    points = ((1, 26.0, 0.30), (2, 26.03, 0.2975), (25, 25.0, 0.20))  # steps, psnr, lpips
    rows = []
    for steps, psnr, lpips in points:
        for metric, spec, value in (("psnr", PSNR, psnr), ("lpips", LPIPS, lpips)):
            rows.append({"config_id": f"k{steps}", "method": "pmrf", "knob_steps": steps, "dataset": "d",
                         "split": "test", "metric": metric, "spec": spec, "value": value, "ci_low": value - 0.01,
                         "ci_high": value + 0.01})
    sets = pd.DataFrame(rows)
    sets["knob_steps"] = sets["knob_steps"].astype("Int64")
    figure = pd_tradeoff(sets, "psnr", "lpips")
    ax = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    pixels = {steps: ax.transData.transform((psnr, lpips)) for steps, psnr, lpips in points}
    half = 5.5 * figure.dpi / 72  # the frontier's square marker, 11 points wide
    for text in ax.texts:
        own = int(text.get_text().removeprefix("steps="))
        box = text.get_window_extent(renderer)
        for steps, (px, py) in pixels.items():
            if steps != own:  # the box and the other marker's square do not intersect
                assert box.x1 < px - half or box.x0 > px + half or box.y1 < py - half or box.y0 > py + half, steps
    assert {t.get_text() for t in ax.texts} == {"steps=1", "steps=2", "steps=25"}


def test_without_run_dirs_plot_and_report_read_the_run_written_to_last(run_dir, tmp_path, monkeypatch):
    import os
    import shutil

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for command in (["plot", "pd-tradeoff", "--y", "ssim"], ["report"]):
        none = runner.invoke(main, command)
        assert none.exit_code == 2 and "no run folder with scores under runs/" in none.output
    for name in ("older", "newer", "unscored"):
        shutil.copytree(run_dir, tmp_path / "runs" / name, ignore=shutil.ignore_patterns("pd-tradeoff.*"))
    (tmp_path / "runs" / "unscored" / "sets.parquet").unlink()  # the newest folder, but nothing to read in it
    for age, name in ((3600, "older"), (60, "newer")):
        for path in (tmp_path / "runs" / name).iterdir():
            stamp = path.stat().st_mtime - age
            os.utime(path, (stamp, stamp))
    chart = runner.invoke(main, ["plot", "pd-tradeoff", "--y", "ssim"])
    assert chart.exit_code == 0, chart.output
    assert "no RUN_DIRS given: reading runs/newer, the run folder under runs/ written to last" in chart.stderr
    assert (tmp_path / "runs" / "newer" / "pd-tradeoff.png").exists()
    assert not (tmp_path / "runs" / "older" / "pd-tradeoff.png").exists()
    report = runner.invoke(main, ["report"])
    assert report.exit_code == 0, report.output
    assert "reading runs/newer" in report.stderr and "test-scale" in report.stdout


def test_help_lists_the_perception_metrics_in_the_order_the_chart_picks_them():
    import re

    from lpmrf_bench.plots import default_perception_metric

    for command in (["plot", "pd-tradeoff", "--help"], ["report", "--help"]):
        help_text = " ".join(CliRunner().invoke(main, command).output.split())
        listed = re.search(r"default: the first of ([a-z_, ]+) in the runs", help_text).group(1).split(", ")
        assert {"fd_mobilenet", "kd_mobilenet", "fid"} <= set(listed)
        for i, name in enumerate(listed):  # with the names from i on in a run, the chart takes name i
            sets = pd.DataFrame({"metric": ["psnr", *reversed(listed[i:])]})
            assert default_perception_metric(sets) == name
