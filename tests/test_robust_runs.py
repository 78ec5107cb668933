"""Crash-safe resume after SIGKILL, several processes, bad inputs, intervals and samples."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import photograph
from lpmrf_bench import store
from lpmrf_bench.imageio import write_png

ENTRY = str(Path(__file__).with_name("_entry.py"))
KEY = ["config_id", "dataset", "split", "image_id", "sample", "metric"]


@pytest.fixture(scope="module")
def many_pairs(tmp_path_factory) -> Path:
    """24 paired 32x32 crops of real photographs (noisy LQ, clean GT)."""
    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(0)
    k = 0
    for name in ("astronaut", "chelsea", "coffee"):
        big = photograph(name, 128)
        for y in range(0, 128, 32):
            for x in range(0, 64, 32):
                clean = big[y:y + 32, x:x + 32]
                noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
                write_png(root / "gt" / f"img{k:02d}.png", clean)
                write_png(root / "lq" / f"img{k:02d}.png", noisy)
                k += 1
    return root


def _args(data: Path, out: Path) -> list[str]:
    return ["run", "--methods", "test-noisy,identity", "--datasets", str(data), "--out", str(out), "--samples", "2",
            "--batch-size", "2", "--metrics", "psnr,ssim", "--no-progress", "--seed", "3"]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "LPMRF_BENCH_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def _run(args: list[str], **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, ENTRY, *args], env=_env(**extra), capture_output=True, text=True, timeout=300)


def _rows(run_dir: Path) -> pd.DataFrame:
    rows = store.load(run_dir)
    return rows[[*KEY, "value"]].sort_values(KEY).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference_run(many_pairs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    done = _run(_args(many_pairs, out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def reference_rows(reference_run) -> pd.DataFrame:
    rows = _rows(reference_run)
    assert len(rows) == 24 * (2 + 1) * 2  # images x (2 samples of test-noisy + identity) x 2 metrics
    return rows


@pytest.mark.slow
def test_random_sigkills_then_resume_give_exactly_the_uninterrupted_rows(many_pairs, reference_rows, tmp_path):
    out = tmp_path / "run"
    args = _args(many_pairs, out)
    # Deterministic kills inside the store's window: temporary file complete, not yet renamed.
    for nth in (2, 5, 9):
        killed = _run(args, LPMRF_TEST_FLUSH_SECONDS="0", LPMRF_TEST_KILL_AT_REPLACE=str(nth))
        assert killed.returncode == -signal.SIGKILL
    # Kills at random moments (seeded), with a slow restorer so they land mid-run.
    rng = np.random.default_rng(7)
    for delay in rng.uniform(2.5, 6.0, size=3):
        proc = subprocess.Popen([sys.executable, ENTRY, *args], env=_env(LPMRF_TEST_FLUSH_SECONDS="0",
                                LPMRF_TEST_SLEEP="0.15"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = _rows(out)
    assert not partial.duplicated(KEY).any()
    finished = _run(args)
    assert finished.returncode == 0, finished.stderr
    got = _rows(out)
    assert not got.duplicated(KEY).any()
    pd.testing.assert_frame_equal(got, reference_rows)
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.slow
def test_two_torchrun_ranks_equal_one_process(many_pairs, reference_rows, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", ENTRY,
           *_args(many_pairs, out)]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    pd.testing.assert_frame_equal(_rows(out), reference_rows)
    perf = pd.read_parquet(out / "perf.parquet")
    per_rank = perf.assign(rank=perf.invocation.str[-2:]).groupby(["rank", "method"])["restorations"].sum()
    assert per_rank.loc["r0"].to_dict() == {"identity": 12, "test-noisy": 24}  # 12 images x 2 samples
    assert per_rank.loc["r1"].to_dict() == {"identity": 12, "test-noisy": 24}


@pytest.mark.slow
def test_folder_of_bad_and_odd_files(tmp_path, caplog):
    root = tmp_path / "bad"
    clean = photograph("coffee", 48)
    names = ["good", "corrupt", "truncated", "empty", "notimage", "sixteen", "rgba", "cmyk", "gray", "oddsize"]
    for name in names:
        write_png(root / "gt" / f"{name}.png", clean)
    lq = root / "lq"
    write_png(lq / "good.png", clean)
    (lq / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    Image.fromarray(clean).save(lq / "full.jpg")
    (lq / "truncated.jpg").write_bytes((lq / "full.jpg").read_bytes()[:300])
    (lq / "full.jpg").unlink()
    (lq / "empty.png").write_bytes(b"")
    (lq / "notimage.png").write_text("hello")
    cv2.imwrite(str(lq / "sixteen.png"), (clean[..., ::-1].astype(np.uint16) * 257))
    Image.fromarray(np.dstack([clean, np.full(clean.shape[:2], 255, np.uint8)])).save(lq / "rgba.png")
    Image.fromarray(clean).convert("CMYK").save(lq / "cmyk.jpg", quality=95)
    Image.fromarray(cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY)).save(lq / "gray.png")
    write_png(lq / "oddsize.png", clean[:47, :45].copy())
    out = tmp_path / "run"
    done = _run(["run", "--methods", "identity", "--datasets", str(root), "--out", str(out), "--no-progress"])
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    errors = pd.read_parquet(out / "errors.parquet").set_index("image_id")["reason"]
    assert set(errors.index) == {"corrupt", "truncated", "empty", "notimage", "oddsize"}
    assert "empty file" in errors["empty"] and "not an image" in errors["notimage"]
    assert "corrupt or truncated" in errors["truncated"] and "45x47 but ground truth is 48x48" in errors["oddsize"]
    for name in ("corrupt", "truncated", "empty", "notimage", "oddsize"):
        assert name in done.stderr
    stored = set(store.load(out).image_id)
    assert stored == {"good", "sixteen", "rgba", "cmyk", "gray"}
    images = pd.read_parquet(out / "images.parquet").set_index("image_id")["conversions"]
    assert images["sixteen"] == "lq: 16-bit -> 8-bit" and images["gray"] == "lq: gray -> RGB"
    assert images["cmyk"] == "lq: CMYK -> RGB" and images["rgba"] == "lq: alpha dropped (fully opaque)"
    psnr = store.load(out).query("metric == 'psnr'").set_index("image_id")["value"]
    assert np.isinf(psnr["sixteen"]) and np.isinf(psnr["good"])  # 16-bit x*257 rounds back exactly


@pytest.mark.slow
def test_samples_spread_and_paired_comparison(reference_run):
    frame = store.load(reference_run)
    stats = store.per_image(frame[frame.metric == "psnr"]).set_index(["method", "image_id"])
    noisy, ident = stats.loc["test-noisy"], stats.loc["identity"]
    assert (noisy["samples"] == 2).all() and (noisy["std"] > 0).all()
    assert (ident["samples"] == 1).all() and ident["std"].isna().all()
    raw = frame[(frame.metric == "psnr") & (frame.method == "test-noisy")]
    by_hand = raw.groupby("image_id")["value"].apply(lambda v: v.to_numpy().mean())
    np.testing.assert_allclose(noisy["mean"].sort_index(), by_hand.sort_index())
    cfg = frame.groupby("method")["config_id"].first()
    diff = store.compare(frame, cfg["test-noisy"], cfg["identity"], "psnr")
    expected = (noisy["mean"].sort_index() - ident["mean"].sort_index()).mean()
    assert diff.value == pytest.approx(expected) and diff.n == 24
    assert diff.low < diff.value < diff.high < 0  # extra noise lowers PSNR on every image
    assert store.compare(frame, cfg["test-noisy"], cfg["identity"], "psnr") == diff  # seeded
    sets = pd.read_parquet(reference_run / "sets.parquet")
    row = sets[(sets.method == "identity") & (sets.metric == "psnr")].iloc[0]
    assert row["n"] == 24 and row["ci_low"] < row["value"] < row["ci_high"]
    assert row["value"] == pytest.approx(ident["mean"].mean())
