"""VGG-16 ReLU(fc2) features (torch-fidelity's precision/recall extractor) against torch-fidelity's own
`FeatureExtractorVGG16` on random weights in torchvision's published layout, resize included."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision

from _random_weights import random_published_state
from lpmrf_bench.metrics.extractors import EXTRACTORS, load_vgg16_fc2, vgg16_features

MANIFEST = json.loads((Path(__file__).parent / "manifests" / "torchvision_vgg16.json").read_text())


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth"
    torch.save(random_published_state(MANIFEST["keys"], 0), path)
    return path


@pytest.mark.slow
def test_manifest_is_torchvisions_layout():
    assert {k: list(v.shape) for k, v in torchvision.models.vgg16().state_dict().items()} == MANIFEST["keys"]


@pytest.mark.slow  # two VGG-16 forwards at 224
def test_features_equal_torch_fidelity(weights_file):
    from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

    theirs = FeatureExtractorVGG16("vgg16", ["fc2_relu"], feature_extractor_weights_path=str(weights_file))
    x = torch.randint(0, 256, (2, 3, 61, 90), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    with torch.no_grad():
        (want,) = theirs(x)
    got = vgg16_features(load_vgg16_fc2(str(weights_file), torch.device("cpu")), x)
    assert got.shape == (2, 4096) and got.dtype == torch.float64
    assert want.abs().max() > 1e-2 and (want > 0).float().mean() > 0.05
    assert (got - want.double()).abs().max() < 1e-4


@pytest.mark.slow  # one VGG-16 forward at 224 per tensor (~30)
def test_perturbing_any_loaded_tensor_changes_the_features(weights_file):
    model = load_vgg16_fc2(str(weights_file), torch.device("cpu"))
    x = torch.randint(0, 256, (1, 3, 40, 40), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    base = vgg16_features(model, x)
    unchanged = []
    for key, tensor in model.state_dict().items():
        saved = tensor.clone()
        tensor.mul_(1.5).add_(0.1)
        if torch.allclose(vgg16_features(model, x), base):
            unchanged.append(key)
        tensor.copy_(saved)
    assert not unchanged, f"features do not depend on: {unchanged}"
    assert set(model.state_dict()) == {k for k in MANIFEST["keys"] if not k.startswith("classifier.6.")}


def test_registry_entry_is_torch_fidelitys_prc_default():
    from torch_fidelity.utils import DEFAULT_FEATURE_EXTRACTOR

    assert DEFAULT_FEATURE_EXTRACTOR["prc"] == "vgg16"
    ex = EXTRACTORS.get("vgg16")
    assert ex.dim == 4096 and ex.weights[0].filename == "vgg16-397923af.pth" and "tf1-bilinear224" in ex.spec
