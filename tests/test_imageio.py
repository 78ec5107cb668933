"""Reading images: every odd format becomes 8-bit RGB with the conversion named; bad files fail by name."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import photograph
from lpmrf_bench.imageio import ImageReadError, list_images, read_image, write_png


@pytest.fixture()
def rgb() -> np.ndarray:
    return photograph("astronaut", 64)


def test_plain_formats_round_trip_exactly(tmp_path, rgb):
    for ext in ("png", "bmp", "webp"):
        path = tmp_path / f"x.{ext}"
        Image.fromarray(rgb).save(path, **({"lossless": True} if ext == "webp" else {}))
        image, conversions = read_image(path)
        assert conversions == []
        np.testing.assert_array_equal(image, rgb)
    Image.fromarray(rgb).save(tmp_path / "x.jpg", quality=95)
    image, conversions = read_image(tmp_path / "x.jpg")
    assert conversions == [] and image.shape == rgb.shape
    assert np.abs(image.astype(int) - rgb).mean() < 4


def test_gray_is_replicated(tmp_path, rgb):
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    Image.fromarray(gray).save(tmp_path / "g.png")
    image, conversions = read_image(tmp_path / "g.png")
    assert conversions == ["gray -> RGB"]
    for c in range(3):
        np.testing.assert_array_equal(image[..., c], gray)


def test_16bit_rgb_and_gray_round_to_nearest_8bit(tmp_path):
    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 65536, size=(8, 9, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "c.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    image, conversions = read_image(tmp_path / "c.png")
    assert "16-bit -> 8-bit" in conversions
    expected = np.floor(rgb16 / 257.0 + 0.5).astype(np.uint8)  # nearest 8-bit level, 65535 -> 255
    np.testing.assert_array_equal(image, expected)
    gray16 = rng.integers(0, 65536, size=(5, 7), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g.png"), gray16)
    image, conversions = read_image(tmp_path / "g.png")
    assert conversions == ["16-bit -> 8-bit", "gray -> RGB"]
    np.testing.assert_array_equal(image[..., 1], np.floor(gray16 / 257.0 + 0.5).astype(np.uint8))


def test_cmyk_jpeg_converted_and_named(tmp_path, rgb):
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "k.jpg", quality=95)
    image, conversions = read_image(tmp_path / "k.jpg")
    assert conversions == ["CMYK -> RGB"]
    assert image.shape == rgb.shape and np.abs(image.astype(int) - rgb).mean() < 6


def test_rgba_flattened_on_white(tmp_path, rgb):
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :10] = 0
    alpha[:, 10:20] = 128
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "a.png")
    image, conversions = read_image(tmp_path / "a.png")
    assert conversions[0].startswith("alpha composited on white")
    assert (image[:, :10] == 255).all()
    np.testing.assert_array_equal(image[:, 20:], rgb[:, 20:])
    expected_half = np.rint(rgb[:, 10:20] * (128 / 255) + 255 * (1 - 128 / 255))
    assert np.abs(image[:, 10:20] - expected_half).max() <= 1
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(tmp_path / "o.png")
    assert read_image(tmp_path / "o.png")[1] == ["alpha dropped (fully opaque)"]


def test_palette_image(tmp_path, rgb):
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    image, conversions = read_image(tmp_path / "p.png")
    assert conversions == ["palette -> RGB"] and image.shape == rgb.shape


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"this is not an image at all", "not an image file"),
])
def test_bad_files_named_with_reason(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert info.value.path == str(path)


def test_truncated_files_are_errors_not_gray_images(tmp_path, rgb):
    for ext in ("png", "jpg"):
        full = tmp_path / f"full.{ext}"
        Image.fromarray(rgb).save(full)
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        with pytest.raises(ImageReadError, match="corrupt or truncated"):
            read_image(cut)


def test_list_images_ids_are_relative_paths_without_extension(tmp_path, rgb):
    (tmp_path / "sub").mkdir()
    write_png(tmp_path / "a.png", rgb)
    write_png(tmp_path / "sub" / "b.png", rgb)
    (tmp_path / "notes.txt").write_text("x")
    assert list(list_images(tmp_path)) == ["a", "sub/b"]
    Image.fromarray(rgb).save(tmp_path / "a.jpg")
    with pytest.raises(ImageReadError, match="share the image_id 'a'"):
        list_images(tmp_path)


def test_write_png_is_lossless_and_leaves_no_temporary(tmp_path, rgb):
    write_png(tmp_path / "o" / "x.png", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "o" / "x.png")[0], rgb)
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["x.png"]
