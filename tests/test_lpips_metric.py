"""LPIPS: equals the published `lpips` pipeline built on torchvision's own model with the same trunk weights.

The reference swaps `torchvision.models.alexnet/vgg16` (what `lpips` calls with `pretrained=True`) for a
torchvision model loaded from our random file with torchvision's strict `load_state_dict`, so it shares no
code with our key mapping. Trunk files are random, NON-ZERO, and hold every published key and shape
(tests/manifests/torchvision_*.json); the huge VGG classifier tensors are stride-0 views so the file stays small.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import lpips
import numpy as np
import pytest
import torch
import torchvision
from skimage import data as skdata

from lpmrf_bench.metrics.base import MetricBatch
from lpmrf_bench.metrics.lpips import LPIPS_ALEX, LPIPS_VGG, build_lpips, lpips_distance, to_lpips_range
from lpmrf_bench.weights import WeightsError, WeightsMissingError

MANIFESTS = Path(__file__).parent / "manifests"
NETS = {"alex": ("torchvision_alexnet.json", torchvision.models.alexnet),
        "vgg": ("torchvision_vgg16.json", torchvision.models.vgg16)}


def random_trunk_state(manifest: dict, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in manifest["keys"].items():
        if key.startswith("classifier") and len(shape) == 2:
            state[key] = torch.full((1, 1), 0.01).expand(*shape)  # published shape, tiny on disk
        elif key.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
            state[key] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05 + 0.01
    return state


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("weights")
    (root / "metrics").mkdir()
    for seed, (net, (manifest_name, _)) in enumerate(NETS.items()):
        manifest = json.loads((MANIFESTS / manifest_name).read_text())
        torch.save(random_trunk_state(manifest, seed), root / "metrics" / manifest["file"])
    return root


@pytest.fixture(scope="module")
def photos() -> tuple[torch.Tensor, torch.Tensor]:
    """Two uint8 batches [3,3,48,48] of real photographs: clean and a noisy, blurred version."""
    imgs = [cv2.resize(im, (48, 48), interpolation=cv2.INTER_AREA)
            for im in (skdata.astronaut(), skdata.chelsea(), skdata.coffee())]
    clean = np.stack(imgs)
    rng = np.random.default_rng(0)
    degraded = np.stack([cv2.GaussianBlur(im, (5, 5), 1.2) for im in imgs]).astype(np.float64)
    degraded = np.clip(np.round(degraded + rng.normal(0, 12, degraded.shape)), 0, 255).astype(np.uint8)
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return to_t(degraded), to_t(clean)


def reference_lpips(net: str, weights_dir: Path, monkeypatch) -> lpips.LPIPS:
    manifest_name, tv_fn = NETS[net]
    manifest = json.loads((MANIFESTS / manifest_name).read_text())
    tv_model = tv_fn(weights=None)
    tv_model.load_state_dict(torch.load(weights_dir / "metrics" / manifest["file"], weights_only=True))
    monkeypatch.setattr(lpips.pretrained_networks.tv, tv_fn.__name__, lambda pretrained=False, **kw: tv_model)
    return lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=False, verbose=False).eval()


@pytest.mark.slow
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_equals_published_pipeline(net, weights_dir, photos, monkeypatch):
    out, gt = photos
    ref = reference_lpips(net, weights_dir, monkeypatch)
    with torch.no_grad():
        want = ref(out.float() / 127.5 - 1, gt.float() / 127.5 - 1).flatten().double()
    spec = {"alex": LPIPS_ALEX, "vgg": LPIPS_VGG}[net]
    got = spec.build(torch.device("cpu"), str(weights_dir))(MetricBatch(out=out, gt=gt))
    assert got.dtype == torch.float64 and got.shape == (3,)
    assert torch.all(got > 1e-3)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_every_loaded_tensor_matters(weights_dir, photos):
    out, gt = photos
    model = build_lpips("alex", torch.device("cpu"), str(weights_dir))
    base = lpips_distance(model, out, gt)
    for name, param in model.net.named_parameters():
        saved = param.detach().clone()
        with torch.no_grad():
            param.mul_(1.5).add_(0.01)
        assert not torch.allclose(lpips_distance(model, out, gt), base), f"{name} has no effect"
        with torch.no_grad():
            param.copy_(saved)


@pytest.mark.slow
def test_uint8_range_handling(weights_dir, photos):
    out, gt = photos
    x = to_lpips_range(torch.tensor([[[[0, 255]]]], dtype=torch.uint8).expand(1, 3, 1, 2))
    assert x[0, 0, 0].tolist() == [-1.0, 1.0]
    model = build_lpips("vgg", torch.device("cpu"), str(weights_dir))
    assert torch.all(lpips_distance(model, gt, gt) == 0)
    with pytest.raises(ValueError, match="uint8"):
        lpips_distance(model, out.float() / 255, gt.float() / 255)


def test_missing_trunk_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LPMRF_BENCH_OFFLINE", "1")
    with pytest.raises(WeightsMissingError, match="vgg16-397923af.pth"):
        LPIPS_VGG.build(torch.device("cpu"), str(tmp_path))


def test_wrong_file_names_the_key(tmp_path):
    (tmp_path / "metrics").mkdir()
    torch.save({"features.0.weight": torch.ones(64, 3, 11, 11)}, tmp_path / "metrics" / "alexnet-owt-7be5be79.pth")
    with pytest.raises(WeightsError, match="features.0.bias"):
        build_lpips("alex", torch.device("cpu"), str(tmp_path))
