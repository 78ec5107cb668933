"""ArcFace ResNet-18: published layout, published file format, and a functional restatement of the forward."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _face_reference import (ARCFACE_MANIFEST, manifest_keys, photos, published_arcface_input, random_state,
                             save_png, tensors_without_effect)
from lpmrf_bench.models.arcface import ArcFaceResNet18, load_arcface


@pytest.fixture(scope="module")
def published_file(tmp_path_factory):
    """Random weights saved the way resnet18_110.pth was: a DataParallel state dict, legacy torch format."""
    state = random_state(manifest_keys(ARCFACE_MANIFEST), seed=1)
    path = tmp_path_factory.mktemp("arcface") / "resnet18_110.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    return path, state


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    return torch.stack([published_arcface_input(save_png(im, folder / f"{i}.png")) for i, im in enumerate(photos())])


def test_layout_is_the_published_one():
    want = manifest_keys(ARCFACE_MANIFEST)
    got = {f"module.{k}": list(v.shape) for k, v in ArcFaceResNet18().state_dict().items()}
    assert got == want


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """resnet_face18(use_se=False) in eval mode, written from the published source against the raw keys."""

    def bn(p, t):
        stats = sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"]
        return F.batch_norm(t, *stats, False, 0.0, 1e-5)

    def conv(p, t, stride=1, padding=1):
        return F.conv2d(t, sd[p + ".weight"], stride=stride, padding=padding)

    m = "module."
    t = F.prelu(bn(m + "bn1", conv(m + "conv1", x)), sd[m + "prelu.weight"])
    t = F.max_pool2d(t, 2, 2)
    for layer, stride in zip(range(1, 5), (1, 2, 2, 2)):
        for block in range(2):
            p = f"{m}layer{layer}.{block}."
            s = stride if block == 0 else 1
            out = bn(p + "bn1", conv(p + "conv1", bn(p + "bn0", t)))
            out = F.prelu(out, sd[p + "prelu.weight"])
            out = bn(p + "bn2", conv(p + "conv2", out, stride=s))
            residual = t
            if p + "downsample.0.weight" in sd:
                residual = bn(p + "downsample.1", conv(p + "downsample.0", t, stride=s, padding=0))
            t = F.prelu(out + residual, sd[p + "prelu.weight"])
    t = bn(m + "bn4", t).reshape(t.shape[0], -1)
    return bn(m + "bn5", F.linear(t, sd[m + "fc5.weight"], sd[m + "fc5.bias"]))


def test_loads_published_file_and_matches_reference_forward(published_file, faces):
    path, state = published_file
    model = load_arcface(path)
    assert not model.training
    with torch.no_grad():
        got = model(faces)
        want = reference_forward(state, faces)
    assert got.shape == (3, 512)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


@pytest.mark.slow
def test_loads_keys_without_module_prefix_and_old_files_without_num_batches_tracked(tmp_path, published_file, faces):
    path, state = published_file
    bare = {k.removeprefix("module."): v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(bare, tmp_path / "bare.pth")
    with torch.no_grad():
        torch.testing.assert_close(load_arcface(tmp_path / "bare.pth")(faces), load_arcface(path)(faces))


@pytest.mark.slow
def test_every_loaded_tensor_changes_the_output(published_file, faces, monkeypatch):
    path, state = published_file
    model = load_arcface(path)
    assert tensors_without_effect(model, faces[:1], monkeypatch) == []
    monkeypatch.undo()
    with torch.no_grad():
        base = model(faces[:1])
        for key in ("conv1.weight", "layer3.1.prelu.weight", "layer2.0.downsample.1.running_var", "bn5.running_mean"):
            tensor = model.state_dict()[key]
            tensor.mul_(1.05)
            assert not torch.allclose(model(faces[:1]), base), key
            tensor.div_(1.05)


@pytest.mark.slow
def test_wrong_file_names_the_file_and_keys(tmp_path, published_file):
    _, state = published_file
    broken = dict(state)
    broken["module.fc5.weight"] = torch.ones(512, 100)
    del broken["module.bn4.bias"]
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match=r"broken\.pth[\s\S]*bn4\.bias[\s\S]*fc5\.weight"):
        load_arcface(tmp_path / "broken.pth")
    (tmp_path / "page.pth").write_text("<html>Google Drive quota exceeded</html>")
    with pytest.raises(ValueError, match=r"page\.pth is not a readable PyTorch checkpoint"):
        load_arcface(tmp_path / "page.pth")
    torch.save({"state_dict": state}, tmp_path / "nested.pth")
    with pytest.raises(ValueError, match="flat state dict"):
        load_arcface(tmp_path / "nested.pth")
