"""`lpmrf-bench degrade` and `lpmrf-bench data preview` through click's CliRunner, and the contact sheet."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage import data

from lpmrf_bench.cli.data import data_group, degrade_command
from lpmrf_bench.data.base import Sample
from lpmrf_bench.data.degrade import DegradationParams, apply
from lpmrf_bench.data.preview import contact_sheet
from lpmrf_bench.imageio import read_image, write_png

SIZE = 64


def square(img: np.ndarray, size: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "hq"
    write_png(folder / "astronaut.png", square(data.astronaut(), 96))
    write_png(folder / "coffee.png", square(data.coffee(), 96))
    write_png(folder / "sub" / "chelsea.png", square(data.chelsea(), 96))
    return folder


def run(*args):
    return CliRunner().invoke(degrade_command, [str(a) for a in args])


def test_degrade_writes_pairs_and_replayable_params(src, tmp_path):
    dst = tmp_path / "out"
    result = run("--pipeline", "difface", "--src", src, "--dst", dst, "--seed", 3, "--size", SIZE)
    assert result.exit_code == 0, result.output
    ids = ["astronaut", "coffee", "sub/chelsea"]
    for image_id in ids:
        assert read_image(dst / "lq" / f"{image_id}.png")[0].shape == (SIZE, SIZE, 3)
        assert read_image(dst / "gt" / f"{image_id}.png")[0].shape == (SIZE, SIZE, 3)
    params = pd.read_parquet(dst / "params.parquet")
    assert list(params["image_id"]) == sorted(ids)
    assert set(params["seed"]) == {3} and set(params["pipeline"]) == {"difface"} and set(params["size"]) == {SIZE}
    assert set(params["kernel_size"]) == {7}  # the pipeline was scaled to 64 px
    assert all("resized 96 -> 64" in c for c in params["conversions"])
    for row in params.to_dict("records"):
        source = Image.open(src / f"{row['image_id']}.png").convert("RGB")
        hq = np.asarray(source.resize((SIZE, SIZE), Image.BICUBIC))
        lq, gt = apply(hq, DegradationParams.from_dict(row))
        np.testing.assert_array_equal(lq, read_image(dst / "lq" / f"{row['image_id']}.png")[0])
        np.testing.assert_array_equal(gt, read_image(dst / "gt" / f"{row['image_id']}.png")[0])


def test_rerun_skips_done_images_and_redoes_missing_ones(src, tmp_path):
    dst = tmp_path / "out"
    assert run("--src", src, "--dst", dst, "--size", SIZE).exit_code == 0
    first = {p: p.read_bytes() for p in sorted(dst.rglob("*.png"))}
    stamps = {p: p.stat().st_mtime_ns for p in first}
    again = run("--src", src, "--dst", dst, "--size", SIZE)
    assert again.exit_code == 0 and "3 of 3 images already degraded" in again.output
    assert {p: p.stat().st_mtime_ns for p in first} == stamps
    (dst / "lq" / "coffee.png").unlink()
    third = run("--src", src, "--dst", dst, "--size", SIZE)
    assert third.exit_code == 0 and "doing the other 1" in third.output
    assert {p: p.read_bytes() for p in sorted(dst.rglob("*.png"))} == first
    assert len(pd.read_parquet(dst / "params.parquet")) == 3


def test_other_seed_or_size_into_the_same_folder_is_refused(src, tmp_path):
    dst = tmp_path / "out"
    assert run("--src", src, "--dst", dst, "--size", SIZE, "--seed", 0).exit_code == 0
    result = run("--src", src, "--dst", dst, "--size", SIZE, "--seed", 1)
    assert result.exit_code == 2 and "--seed 0" in result.output
    result = run("--src", src, "--dst", dst, "--size", 32, "--seed", 0)
    assert result.exit_code == 2 and "not --size 32" in result.output


def test_bad_sources_are_named_and_skipped(src, tmp_path):
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    write_png(src / "wide.png", np.zeros((32, 48, 3), dtype=np.uint8))
    dst = tmp_path / "out"
    result = run("--src", src, "--dst", dst, "--size", SIZE)
    assert result.exit_code == 1
    assert "2 source image(s) could not be degraded" in result.output
    assert "broken.png" in result.output and "wide.png" in result.output and "not square" in result.output
    assert sorted(pd.read_parquet(dst / "params.parquet")["image_id"]) == ["astronaut", "coffee", "sub/chelsea"]


def test_dst_inside_src_is_refused(src):
    result = run("--src", src, "--dst", src / "out")
    assert result.exit_code == 2 and "inside --src" in result.output


def test_preview_writes_sheet_of_expected_size(src, tmp_path):
    dst = tmp_path / "out"
    assert run("--src", src, "--dst", dst, "--size", SIZE).exit_code == 0
    sheet_path = tmp_path / "sheet.png"
    result = CliRunner().invoke(data_group, ["preview", str(dst), "--out", str(sheet_path), "--n", "16", "--cell", "32"])
    assert result.exit_code == 0, result.output
    sheet = read_image(sheet_path)[0]
    # 3 paired samples -> 2x2 grid of (32 x 64) tiles with 4 px gaps
    assert sheet.shape == (2 * 32 + 4, 2 * 64 + 4, 3)


def test_preview_of_a_missing_named_set_is_one_message(tmp_path):
    result = CliRunner().invoke(data_group, ["preview", "no-such-set", "--out", str(tmp_path / "s.png")])
    assert result.exit_code != 0 and "no-such-set" in result.output and "Traceback" not in result.output


def test_contact_sheet_places_lq_left_of_gt_and_upsamples_lq():
    lq = np.zeros((8, 8, 3), dtype=np.uint8)
    lq[:4] = 200  # top half bright
    gt = np.full((32, 32, 3), 90, dtype=np.uint8)
    samples = [Sample("a", lq, gt), Sample("b", np.full((32, 32, 3), 50, np.uint8), gt)]
    sheet = contact_sheet(samples, cell=32, columns=2, gap=2)
    assert sheet.shape == (32, 2 * 64 + 2, 3)
    tile_a = sheet[:, :64]
    assert (tile_a[:16, :32] == 200).all() and (tile_a[16:, :32] == 0).all()  # LQ upsampled, rows kept in place
    assert (tile_a[:, 32:] == 90).all()
    assert (sheet[:, 66:98] == 50).all() and (sheet[:, 98:] == 90).all()
    with_captions = contact_sheet(samples, cell=32, columns=1, captions=True)
    assert with_captions.shape == (2 * (32 + 18) + 4, 64, 3)
    assert (with_captions[32:50] != 32).any()  # the caption strip has text in it


def test_contact_sheet_lq_only():
    samples = [Sample(str(i), np.full((20, 20, 3), i * 40, np.uint8)) for i in range(5)]
    sheet = contact_sheet(samples, cell=10, gap=0)
    assert sheet.shape == (2 * 10, 3 * 10, 3)
    assert (sheet[10:, 10:20] == 160).all() and (sheet[10:, 20:] == 32).all()  # 5th tile, then empty background


def test_run_on_a_degraded_folder_records_its_parameters(tmp_path):
    """`run` on a folder written by `degrade` stores each image's degradation parameters in images.parquet."""
    import json

    import pandas as pd

    from conftest import photograph
    from lpmrf_bench.cli.main import main
    from lpmrf_bench.imageio import write_png

    write_png(tmp_path / "hq" / "a.png", photograph("astronaut", 64))
    write_png(tmp_path / "hq" / "b.png", photograph("coffee", 64))
    runner = CliRunner()
    done = runner.invoke(main, ["degrade", "--pipeline", "difface", "--src", str(tmp_path / "hq"),
                                "--dst", str(tmp_path / "pairs"), "--seed", "5"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["run", "--methods", "identity", "--datasets", str(tmp_path / "pairs"),
                                "--out", str(tmp_path / "run"), "--no-progress"])
    assert done.exit_code == 0, done.output
    images = pd.read_parquet(tmp_path / "run" / "images.parquet").set_index("image_id")
    recorded = pd.read_parquet(tmp_path / "pairs" / "params.parquet").set_index("image_id")
    for image_id in ("a", "b"):
        stored = json.loads(images.loc[image_id, "degradation"])
        assert stored["jpeg_quality"] == recorded.loc[image_id, "jpeg_quality"]
        assert stored["seed"] == 5
