"""`lpmrf-bench report`: tables equal sets.parquet, the HTML is self-contained, Markdown has its images beside it."""
from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import write_pairs
from lpmrf_bench.cli.main import main
from lpmrf_bench.report.grids import pick_images
from lpmrf_bench.restorers import RESTORERS, RestorerSpec
from lpmrf_bench.store import config_labels


class Collect(HTMLParser):
    """Every tag with its attributes, and the table cells that carry a stored value."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.cells: list[tuple[str, str, str]] = []  # (config, metric, data-value)
        self.best: list[tuple[str, str]] = []
        self._config = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "tr" and "data-config" in attrs:
            self._config = attrs["data-config"]
        if tag == "td" and "data-value" in attrs:
            self.cells.append((self._config, attrs["data-metric"], attrs["data-value"]))
            if attrs.get("class") == "best":
                self.best.append((self._config, attrs["data-metric"]))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, photo_pairs):
    root = tmp_path_factory.mktemp("report")
    write_pairs(root / "pairs", photo_pairs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(RESTORERS._targets, "test-scale", "test_run_cli:SCALE")
        for methods, extra in (("test-scale", ["--sweep", "gain=0.8,1.0", "--save-images"]), ("identity", [])):
            result = CliRunner().invoke(main, ["run", "--methods", methods, "--datasets", str(root / "pairs"),
                                               "--metrics", "psnr,ssim", "--out", str(root / "run"), "--no-progress",
                                               *extra])
            assert result.exit_code == 0, result.output
    return root / "run"


def test_best_median_worst_pick():
    values = pd.Series({"a": 1.0, "b": 3.0, "c": 2.0, "d": 2.5, "e": 0.5})
    assert pick_images(values, higher_is_better=True) == {"best": "b", "median": "c", "worst": "e"}
    assert pick_images(values, higher_is_better=False) == {"best": "e", "median": "c", "worst": "b"}
    assert pick_images(pd.Series({"a": 1.0}), True) == {"best": "a"}


@pytest.mark.slow
def test_html_is_self_contained_and_its_tables_are_sets_parquet(run_dir, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", str(run_dir), "--out", str(out), "--y", "ssim"])
    assert result.exit_code == 0, result.output
    parsed = Collect()
    parsed.feed(out.read_text())
    links = [v for _, attrs in parsed.tags for k, v in attrs.items() if k in ("src", "href")]
    assert links and all(v.startswith("data:") or v.startswith("#") for v in links)
    assert not any(tag in ("script", "link", "iframe") for tag, _ in parsed.tags)
    sets = pd.read_parquet(run_dir / "sets.parquet")
    sets["config"] = config_labels(sets)
    assert len(parsed.cells) == len(sets) == 6
    for config, metric, value in parsed.cells:
        stored = sets[(sets.config == config) & (sets.metric == metric)]["value"].item()
        assert float(value) == stored
    top = sets.groupby("metric")["value"].transform("max")  # both metrics: higher is better; ties are all marked
    best = sets.loc[sets["value"] == top, ["config", "metric"]]
    assert sorted(parsed.best) == sorted(map(tuple, best.to_numpy())) and len(best) == 4  # gain=1.0 ties identity
    images = [Image.open(io.BytesIO(base64.b64decode(v.split(",", 1)[1]))) for v in links]
    assert len(images) == 2 and all(im.size[0] > 300 for im in images)  # the PD chart and the image grid


@pytest.mark.slow
def test_markdown_has_its_images_beside_it_and_the_verdict(run_dir, tmp_path):
    out = tmp_path / "pr" / "report.md"
    result = CliRunner().invoke(main, ["report", str(run_dir), "--baseline", str(run_dir), "--out", str(out),
                                       "--y", "ssim"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "**0 regression(s), 0 improvement(s), 6 unchanged**" in text
    assert "![image grid of" in text and "](report_files/grid-0.png)" in text
    assert (out.parent / "report_files" / "grid-0.png").read_bytes()[:4] == b"\x89PNG"
    assert "`psnr/rgb-255-f64/pmrf-v1`" in text and "psnr ↑" in text
    assert "identity: re-run on these 3 images" in text and "test-scale gain=0.8: not shown" not in text
    assert "test-scale gain=0.8: saved outputs" in text
    assert "identity: re-run on these 3 images (outputs were not saved); it reproduces the stored psnr values" in text


@pytest.mark.slow
def test_a_rerun_that_does_not_reproduce_the_scored_images_says_so(run_dir, tmp_path, monkeypatch):
    darker = RestorerSpec(name="identity", load=lambda weights, device: lambda batch, knobs: batch.lq * 0.9)
    monkeypatch.setitem(RESTORERS._loaded, "identity", darker)  # the code changed since the run
    out = tmp_path / "report.md"
    assert CliRunner().invoke(main, ["report", str(run_dir), "--out", str(out), "--y", "ssim"]).exit_code == 0
    text = out.read_text()
    assert "identity: re-run on these 3 images (outputs were not saved); it does NOT reproduce the stored psnr on" in text
    stored = pd.read_parquet(run_dir / "metrics").query("method == 'identity' and metric == 'psnr'")
    first = stored.set_index("image_id")["value"]
    assert sum(f"{image_id} ({value:.4g} stored," in text for image_id, value in first.items()) == 3  # the 3 shown


def test_runs_under_different_specs_are_refused(tmp_path):
    for name, spec in (("a", "psnr/rgb-255-f64/pmrf-v1"), ("b", "psnr/rgb-01-eps1e-8/pyiqa-v1")):
        (tmp_path / name).mkdir()
        pd.DataFrame({"config_id": ["c"], "method": ["identity"], "weights": ["-"], "dataset": ["d"], "split": ["s"],
                      "metric": ["psnr"], "spec": [spec], "value": [20.0], "n": [3], "ci_low": [19.0],
                      "ci_high": [21.0]}).to_parquet(tmp_path / name / "sets.parquet")
    result = CliRunner().invoke(main, ["report", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 2 and "different specs (psnr: psnr/rgb-01-eps1e-8/pyiqa-v1, psnr/rgb-255-f64/pmrf-v1)" in result.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=socks5://127.0.0.1:9"]  # no network at all


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install -y chromium; .ci/run does)")
def test_report_renders_offline_in_a_real_browser(run_dir, tmp_path):
    import cv2

    out = tmp_path / "report.html"
    assert CliRunner().invoke(main, ["report", str(run_dir), "--out", str(out), "--y", "ssim"]).exit_code == 0
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,3000",
                    f"--screenshot={shot}", out.as_uri()], check=True, capture_output=True, timeout=120,
                   env={**os.environ, "HOME": str(tmp_path)})
    page = np.asarray(Image.open(shot).convert("RGB"))
    assert page.std() > 10  # not blank
    parsed = Collect()
    parsed.feed(out.read_text())
    srcs = [attrs["src"] for tag, attrs in parsed.tags if tag == "img"]
    for src in srcs:  # every embedded image was decoded and drawn: a patch of it appears pixel for pixel
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))
        h, w = image.shape[:2]
        patch = image[h // 3: h // 3 + 48, w // 3: w // 3 + 48]
        score = cv2.matchTemplate(page, patch, cv2.TM_SQDIFF_NORMED).min()
        assert score < 1e-3, f"image {image.shape} not found on the rendered page (best match {score:.3g})"


def test_training_runs_give_the_convergence_chart(tmp_path):
    steps = np.arange(40_000, 400_001, 40_000)
    for name, values in (("pmrf", [68.75, 67.70, 68.74, 68.08, 66.69, 64.92, 64.18, 63.9, 63.38, 65.06]),
                         ("latent", [65.31, 61.77, 63.13, 61.17, 60.31, 58.49, 58.61, 57.7, 58.23, 58.88])):
        (tmp_path / name).mkdir()
        pd.DataFrame({"run_id": name, "step": steps, "wall_s": steps / 10.0, "images_seen": steps * 256, "metric": "fid",
                      "spec": "fid/test-features/test-v1", "value": values, "n": 1000}).to_parquet(
            tmp_path / name / "convergence.parquet")
    out = tmp_path / "r.md"
    result = CliRunner().invoke(main, ["report", str(tmp_path / "pmrf"), str(tmp_path / "latent"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "## Convergence\n\n![convergence of fid](r_files/convergence.png)" in out.read_text()
    assert (tmp_path / "r_files" / "convergence.png").read_bytes()[:4] == b"\x89PNG"
