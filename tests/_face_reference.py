"""Independent restatements used by the face-metric tests: published file layouts filled with random non-zero
weights, the published preprocessing done literally on PNG files, and the published heatmap-to-point rule as
a slow per-point loop. Nothing here imports the code under test."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import photograph

MANIFESTS = Path(__file__).parent / "manifests"
ARCFACE_MANIFEST = MANIFESTS / "arcface_resnet18_110.json"
FAN_MANIFEST = MANIFESTS / "fan_alignment_WFLW_4HG.json"


def manifest_keys(path: Path) -> dict[str, list[int]]:
    return json.loads(path.read_text())["keys"]


def random_state(keys: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Random weights in the published layout; nothing zero, BN variances positive, scales kept sane."""
    gen = torch.Generator().manual_seed(seed)

    def uniform(shape: list[int], lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=gen)

    state = {}
    for key, shape in keys.items():
        name = key.rsplit(".", 1)[-1]
        if name == "num_batches_tracked":
            state[key] = torch.tensor(1000, dtype=torch.long)
        elif name == "running_var":
            state[key] = uniform(shape, 0.5, 2.0)
        elif name in ("running_mean", "bias"):
            state[key] = uniform(shape, 0.02, 0.1) * torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
        elif len(shape) == 1:  # BatchNorm scale or PReLU slope
            state[key] = uniform(shape, 0.1, 0.4) if "prelu" in key else uniform(shape, 0.5, 1.5)
        else:
            fan_in = int(np.prod(shape[1:]))
            w = torch.randn(shape, generator=gen) / fan_in**0.5
            state[key] = torch.where(w == 0, torch.full_like(w, 1e-3), w)
    return state


def photos(size: int = 512) -> list[np.ndarray]:
    """Real RGB photographs shipped with scikit-image, resized to size x size (uint8 HWC)."""
    return [photograph(name, size) for name in ("astronaut", "chelsea", "coffee")]


def degrade(rgb: np.ndarray, seed: int) -> np.ndarray:
    """A visibly different version of a photo (blur + noise + small shift), uint8 HWC."""
    rng = np.random.default_rng(seed)
    out = cv2.GaussianBlur(rgb, (0, 0), 3.0).astype(np.float64) + rng.normal(0, 12, rgb.shape)
    return np.roll(np.clip(np.round(out), 0, 255).astype(np.uint8), 6, axis=1)


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def save_png(rgb: np.ndarray, path: Path) -> Path:
    assert cv2.imwrite(str(path), rgb[..., ::-1])
    return path


def published_arcface_input(path: Path) -> torch.Tensor:
    """PMRF calculate_cos_dist.load_image, literally: imread gray, resize 128 linear, (x-127.5)/127.5."""
    image = cv2.imread(str(path), 0)
    image = cv2.resize(image, (128, 128), interpolation=cv2.INTER_LINEAR)
    image = image[np.newaxis].astype(np.float32)
    return torch.from_numpy((image - 127.5) / 127.5)


def published_fan_input(path: Path) -> torch.Tensor:
    """PMRF awing_arch.FAN.get_landmarks preprocessing, literally: imread BGR, resize 256, BGR->RGB, /255."""
    img = cv2.imread(str(path))
    img = cv2.resize(img, (256, 256))[..., ::-1]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255.0


def published_points(heatmaps: np.ndarray, width: int, height: int) -> np.ndarray:
    """The published calculate_points for ONE image ([N,64,64]), one point at a time, then the scale.

    Index semantics of the original numpy code: i-1 = -1 wraps to the last pixel; i+1 past the end is
    clamped (the original crashes there); the row-neighbour fallbacks apply to all points of the image as
    soon as one point needs them.
    """
    n, h, w = heatmaps.shape
    hw = h * w
    flat = heatmaps.reshape(n, hw)
    peaks = [int(np.argmax(flat[k])) for k in range(n)]
    any_bottom = any(i + w >= hw for i in peaks)
    any_top = any(i - w <= 0 for i in peaks)
    out = np.zeros((n, 2))
    for k, i in enumerate(peaks):
        row = flat[k]
        x_up = row[min(i + 1, hw - 1)]
        x_down = row[i - 1]  # python/numpy negative index: wraps to the end
        y_up = row[hw - 1] if any_bottom else row[i + w]
        y_down = row[0] if any_top else row[i - w]
        out[k, 0] = (i % w) + 0.25 * np.sign(x_up - x_down) + 0.5
        out[k, 1] = (i // w) + 0.25 * np.sign(y_up - y_down) + 0.5
    return out * np.array([width / 64, height / 64])


def differentiable_eval_batch_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make eval-mode batch norm an explicit formula so running statistics receive gradients too."""

    def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
        assert not training, "metric networks must run batch norm in eval mode"
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - running_mean.view(shape)) / torch.sqrt(running_var.view(shape) + eps)
        return y * weight.view(shape) + bias.view(shape)

    monkeypatch.setattr(F, "batch_norm", batch_norm)


def tensors_without_effect(model: torch.nn.Module, x: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of float parameters/buffers whose gradient of a random projection of model(x) is all zero."""
    from torch.func import functional_call

    differentiable_eval_batch_norm(monkeypatch)
    state = model.state_dict()
    tensors = {k: v.detach().clone().requires_grad_(True) for k, v in state.items() if v.is_floating_point()}
    y = functional_call(model, tensors, (x,))
    proj = torch.randn(y.shape, generator=torch.Generator().manual_seed(0))
    (y * proj).sum().backward()
    return [k for k, v in tensors.items() if v.grad is None or not bool(v.grad.abs().sum() > 0)]
