"""Finding the four benchmark sets under a data root laid out as their archives unpack."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from lpmrf_bench.data.base import DatasetError
from lpmrf_bench.data.benchmark_sets import CELEBA_TEST, LFW_TEST, WEBPHOTO_TEST, WIDER_TEST
from lpmrf_bench.imageio import ImageReadError, write_png


def put(folder: Path, names: list[str], size: int = 512) -> None:
    for i, name in enumerate(names):
        img = np.full((size, size, 3), 10 * i, dtype=np.uint8)
        img[0, 0] = (1, 2, 3)
        write_png(folder / f"{name}.png", img)


def open_quietly(spec, root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.open("test", root)


def test_paired_set_found_flat(tmp_path):
    put(tmp_path / "celeba_512_validation_lq", ["00000000", "00000001"])
    put(tmp_path / "celeba_512_validation", ["00000000", "00000001"])
    ds = open_quietly(CELEBA_TEST, tmp_path)
    assert ds.name == "celeba-test" and ds.paired and ds.expected_count == 3000 and ds.resolution == 512
    assert list(ds.image_ids()) == ["00000000", "00000001"]
    sample = ds.load("00000001")
    assert sample.lq.shape == sample.gt.shape == (512, 512, 3)
    assert tuple(sample.lq[0, 0]) == (1, 2, 3) and sample.lq[5, 5, 0] == 10


def test_sets_found_one_level_down(tmp_path):
    put(tmp_path / "celeba_test" / "celeba_512_validation_lq", ["a"])
    put(tmp_path / "celeba_test" / "celeba_512_validation", ["a"])
    put(tmp_path / "WebPhoto-Test" / "WebPhoto-Test", ["w1", "w2"])
    put(tmp_path / "lfw_cropped_faces", ["Aaron_Eckhart_0001"])
    put(tmp_path / "wider" / "Wider-Test", ["0001"])
    assert list(open_quietly(CELEBA_TEST, tmp_path).image_ids()) == ["a"]
    webphoto = open_quietly(WEBPHOTO_TEST, tmp_path)
    assert list(webphoto.image_ids()) == ["w1", "w2"] and not webphoto.paired
    assert webphoto.lq_dir == tmp_path / "WebPhoto-Test" / "WebPhoto-Test"
    assert list(open_quietly(LFW_TEST, tmp_path).image_ids()) == ["Aaron_Eckhart_0001"]
    assert open_quietly(WIDER_TEST, tmp_path).lq_dir == tmp_path / "wider" / "Wider-Test"


def test_missing_set_says_where_it_is_published_and_where_to_put_it(tmp_path):
    with pytest.raises(DatasetError) as err:
        CELEBA_TEST.open("test", tmp_path)
    message = str(err.value)
    assert "https://xinntao.github.io/projects/gfpgan" in message
    assert "<data root>/celeba_512_validation_lq/" in message and "<data root>/celeba_512_validation/" in message
    assert str(tmp_path) in message
    with pytest.raises(DatasetError, match="shangchenzhou.com/projects/CodeFormer") as err:
        WIDER_TEST.open("test", tmp_path)
    assert "Wider-Test/" in str(err.value)


def test_missing_gt_half_is_named(tmp_path):
    put(tmp_path / "celeba_512_validation_lq", ["a"])
    with pytest.raises(DatasetError) as err:
        CELEBA_TEST.open("test", tmp_path)
    assert "no celeba_512_validation/ under" in str(err.value)


def test_no_data_root_names_the_option_and_variable():
    with pytest.raises(DatasetError, match="--data-root.*LPMRF_BENCH_DATA"):
        LFW_TEST.open("test", None)


def test_count_mismatch_warns_with_both_numbers(tmp_path):
    put(tmp_path / "Wider-Test", ["0001", "0002", "0003"])
    with pytest.warns(UserWarning, match=r"found 3 images.*has 970"):
        WIDER_TEST.open("test", tmp_path)


def test_mismatched_lq_gt_names_are_reported(tmp_path):
    put(tmp_path / "celeba_512_validation_lq", ["a", "b", "only_lq"])
    put(tmp_path / "celeba_512_validation", ["a", "b", "only_gt"])
    with pytest.warns(UserWarning) as record:
        ds = CELEBA_TEST.open("test", tmp_path)
    text = " ".join(str(w.message) for w in record)
    assert "2 LQ/GT names do not match" in text and "only_lq.png" in text and "only_gt.png" in text
    assert "found 2 images" in text
    assert list(ds.image_ids()) == ["a", "b"]


def test_wrong_resolution_fails_at_open(tmp_path):
    put(tmp_path / "lfw_cropped_faces", ["a", "b"], size=256)
    with pytest.raises(DatasetError, match=r"a\.png is 256x256.*512x512"):
        open_quietly(LFW_TEST, tmp_path)


def test_wrong_resolution_of_a_later_image_surfaces_at_load(tmp_path):
    put(tmp_path / "lfw_cropped_faces", ["a"])
    put(tmp_path / "lfw_cropped_faces", ["b"], size=128)
    ds = open_quietly(LFW_TEST, tmp_path)
    ds.load("a")
    with pytest.raises(ImageReadError, match=r"b\.png.*128x128"):
        ds.load("b")


def test_two_copies_one_level_down_are_ambiguous(tmp_path):
    put(tmp_path / "one" / "Wider-Test", ["a"])
    put(tmp_path / "two" / "Wider-Test", ["a"])
    with pytest.raises(DatasetError, match="more than once"):
        WIDER_TEST.open("test", tmp_path)


def test_specs_carry_published_metadata():
    assert {s.name: s.counts["test"] for s in (CELEBA_TEST, LFW_TEST, WEBPHOTO_TEST, WIDER_TEST)} == {
        "celeba-test": 3000, "lfw-test": 1711, "webphoto-test": 407, "wider-test": 970}
    assert CELEBA_TEST.paired and not any(s.paired for s in (LFW_TEST, WEBPHOTO_TEST, WIDER_TEST))
