"""Reading any image file as 8-bit RGB, saying what was changed; writing PNGs atomically.

Benchmarks meet gray, palette, 16-bit, CMYK and RGBA files, and truncated downloads. Every conversion
is returned as a short string (stored in `images.parquet`), and every failure is an `ImageReadError`
naming the file and the reason, never a silent gray image (OpenCV decodes truncated JPEGs without error;
Pillow's `load` does not, so Pillow checks integrity).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from lpmrf_bench.atomic import atomic_write

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class ImageReadError(ValueError):
    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """image_id (path relative to `folder`, no extension) -> file, for every image file below it."""
    root = Path(folder)
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            image_id = path.relative_to(root).with_suffix("").as_posix()
            if image_id in found:
                raise ImageReadError(path, f"two files share the image_id {image_id!r}: {found[image_id].name} and {path.name}")
            found[image_id] = path
    return found


def _is_16bit(img: Image.Image) -> bool:
    return img.mode.startswith("I;16") or any(";16" in str(tile.args) for tile in getattr(img, "tile", []))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit -> 8-bit by rounding x/257 (maps 65535 to 255 exactly), not by dropping the low byte."""
    return np.clip(np.rint(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def _flatten_alpha(rgba: np.ndarray, conversions: list[str]) -> np.ndarray:
    rgb, alpha = rgba[..., :3].astype(np.float64), rgba[..., 3:].astype(np.float64) / 255.0
    if (alpha == 1.0).all():
        conversions.append("alpha dropped (fully opaque)")
        return rgba[..., :3].copy()
    conversions.append(f"alpha composited on white (min alpha {alpha.min():.3f})")
    return np.clip(np.rint(rgb * alpha + 255.0 * (1.0 - alpha)), 0, 255).astype(np.uint8)


def _decode_16bit(path: Path, conversions: list[str]) -> np.ndarray:
    raw = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16:
        raise ImageReadError(path, "16-bit image that OpenCV cannot decode")
    conversions.append("16-bit -> 8-bit")
    if raw.ndim == 2:
        raw = raw[..., None]
    channels = raw.shape[2]
    order = {1: [0], 2: [0, 1], 3: [2, 1, 0], 4: [2, 1, 0, 3]}[channels]  # OpenCV stores BGR(A)
    img = _to_uint8(raw[..., order])
    if channels in (1, 2):
        conversions.append("gray -> RGB")
        gray = img[..., :1]
        img = np.concatenate([gray, gray, gray] + ([img[..., 1:]] if channels == 2 else []), axis=2)
    return _flatten_alpha(img, conversions) if img.shape[2] == 4 else img


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Return (uint8 [H,W,3] RGB array, list of conversions applied)."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    conversions: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            sixteen_bit = _is_16bit(img)  # before load(), which clears the tile list
            img.load()
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image file (no known image format recognised)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(path, f"corrupt or truncated image ({exc})") from None
    except Image.DecompressionBombWarning as exc:
        raise ImageReadError(path, f"image too large ({exc})") from None
    if getattr(img, "n_frames", 1) > 1:
        conversions.append(f"first of {img.n_frames} frames")
    if sixteen_bit:
        return _decode_16bit(path, conversions), conversions
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy(), conversions
    if mode == "P":
        conversions.append("palette -> RGB")
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    elif mode == "CMYK":
        conversions.append("CMYK -> RGB")
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy(), conversions
    elif mode in ("L", "1", "LA"):
        conversions.append("gray -> RGB")
        img = img.convert("RGBA" if mode == "LA" else "RGB")
        mode = img.mode
    elif mode not in ("RGBA", "RGB"):
        conversions.append(f"{mode} -> RGB")
        img = img.convert("RGB")
        mode = "RGB"
    arr = np.asarray(img, dtype=np.uint8).copy()
    return (_flatten_alpha(arr, conversions) if mode == "RGBA" else arr), conversions


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write uint8 [H,W,3] RGB as PNG via a temporary file, so a killed process leaves no partial PNG."""
    path = Path(path)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_png expects uint8 [H,W,3], got {image.dtype} {image.shape}")
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    atomic_write(path, lambda tmp: tmp.write_bytes(buf.tobytes()))
