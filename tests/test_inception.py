"""FID Inception features against torch-fidelity's and pytorch-fid's own networks, on random weights saved in
their key layout (the published files cannot be downloaded here), including each library's resize."""
from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
import torch

from _random_weights import random_published_state
from lpmrf_bench import weights as W
from lpmrf_bench.metrics.extractors import EXTRACTORS
from lpmrf_bench.metrics.inception import (FIDInceptionV3, inception_features, load_fid_inception, pyiqa_input,
                                           pytorch_fid_input, resize_bilinear_tf1, torch_fidelity_input)

MANIFEST = json.loads((Path(__file__).parent / "manifests" / "fid_inception_v3.json").read_text())


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inception") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(random_published_state(MANIFEST["keys"], 0), path)
    return path


def images(seed: int, h: int, w: int, n: int = 2) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


@pytest.mark.slow
def test_manifest_is_both_libraries_layout():
    import torch_fidelity.feature_extractor_inceptionv3 as tfid
    from pytorch_fid import inception as ptfid

    with mock.patch.object(ptfid, "load_state_dict_from_url", return_value=random_published_state(MANIFEST["keys"], 1)):
        pytorch_fid_keys = {k: list(v.shape) for k, v in ptfid.fid_inception_v3().state_dict().items()}
    with mock.patch.object(tfid, "load_state_dict_from_url", return_value=random_published_state(MANIFEST["keys"], 1)):
        fidelity = tfid.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    assert {k: list(v.shape) for k, v in fidelity.state_dict().items()} == MANIFEST["keys"]
    assert pytorch_fid_keys == MANIFEST["keys"]
    assert {k: list(v.shape) for k, v in FIDInceptionV3().state_dict().items()} == MANIFEST["keys"]


@pytest.mark.slow  # three Inception forwards at 299 on a busy 2-core machine
def test_features_equal_torch_fidelity(weights_file):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                         feature_extractor_weights_path=str(weights_file))
    ours = load_fid_inception(str(weights_file), torch.device("cpu"))
    x = images(2, 100, 77)  # non-square, upsampled: every interpolation weight differs from the identity
    with torch.no_grad():
        (want,) = theirs(x)
    got = inception_features(ours, x, torch_fidelity_input)
    assert got.shape == (2, 2048) and got.dtype == torch.float64
    assert want.abs().max() > 1e-2 and (want[0] - want[1]).abs().max() > 1e-3
    assert (got - want.double()).abs().max() < 1e-4


@pytest.mark.slow
def test_features_equal_pytorch_fid(weights_file):
    from pytorch_fid import inception as ptfid

    with mock.patch.object(ptfid, "load_state_dict_from_url",
                           return_value=torch.load(weights_file, weights_only=True)):
        theirs = ptfid.InceptionV3([ptfid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    ours = load_fid_inception(str(weights_file), torch.device("cpu"))
    x = images(3, 512, 512)  # the benchmark sets' size: a downscale
    with torch.no_grad():
        (want,) = theirs(x.float() / 255)  # pytorch-fid's dataset: ToTensor, i.e. x / 255
    got = inception_features(ours, x, pytorch_fid_input)
    assert want.abs().max() > 1e-2
    assert (got - want[:, :, 0, 0].double()).abs().max() < 1e-4


def test_tf1_resize_against_an_explicit_loop():
    x = torch.rand(1, 1, 5, 7, generator=torch.Generator().manual_seed(4)) * 255
    out_size = 11
    got = resize_bilinear_tf1(x, out_size)
    want = torch.empty(out_size, out_size, dtype=torch.float64)
    for i in range(out_size):  # TF1: source = dest * in / out, no half-pixel offset, clamp the far neighbour
        sy = i * 5 / out_size
        y0, fy = int(sy), sy - int(sy)
        for j in range(out_size):
            sx = j * 7 / out_size
            x0, fx = int(sx), sx - int(sx)
            v = x[0, 0].double()
            at = lambda r, c: v[min(r, 4), min(c, 6)]  # noqa: E731
            top = at(y0, x0) + (at(y0, x0 + 1) - at(y0, x0)) * fx
            bottom = at(y0 + 1, x0) + (at(y0 + 1, x0 + 1) - at(y0 + 1, x0)) * fx
            want[i, j] = top + (bottom - top) * fy
    assert (got[0, 0].double() - want).abs().max() < 1e-3


@pytest.mark.slow  # one small forward per tensor (~560)
def test_perturbing_any_loaded_tensor_changes_the_features(weights_file):
    model = load_fid_inception(str(weights_file), torch.device("cpu"))
    x = torch_fidelity_input(images(5, 16, 16, n=1))[..., :96, :96]  # the trunk runs on any side >= 75
    with torch.no_grad():
        base = model(x)
        wrong = []
        for key, tensor in model.state_dict().items():  # views of the loaded tensors: edit, score, restore
            if key.endswith("num_batches_tracked"):
                continue
            saved = tensor.clone()
            tensor.mul_(1.5).add_(0.1)
            if torch.allclose(model(x), base) != key.startswith("fc."):
                wrong.append(key)
            tensor.copy_(saved)
    assert not wrong, f"features do not depend on (or the unused logits change them): {wrong}"


@pytest.mark.slow
def test_foreign_file_is_one_clear_error(tmp_path):
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(W.WeightsError, match="not the FID InceptionV3 layout"):
        load_fid_inception(str(tmp_path / "bad.pth"), torch.device("cpu"))


def test_registry_entries_name_their_file_and_input_path():
    fidelity, ptfid = EXTRACTORS.get("inception"), EXTRACTORS.get("inception-ptfid")
    assert fidelity.dim == ptfid.dim == 2048
    assert fidelity.weights[0].filename == "weights-inception-2015-12-05-6726825d.pth"
    assert ptfid.weights[0].filename == "pt_inception-2015-12-05-6726825d.pth"
    assert "tf1-bilinear299" in fidelity.spec and "F.interpolate-bilinear299" in ptfid.spec


@pytest.mark.slow
def test_pyiqa_path_equals_cleanfid_resizer_and_pytorch_fid_network(weights_file):
    import numpy as np
    from cleanfid.resize import make_resizer
    from pytorch_fid import inception as ptfid

    with mock.patch.object(ptfid, "load_state_dict_from_url",
                           return_value=torch.load(weights_file, weights_only=True)):
        theirs = ptfid.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    resize = make_resizer("PIL", False, "bicubic", (299, 299))  # pyiqa's fid_arch.py clean mode: the same steps
    x = images(6, 64, 80)
    batch = torch.from_numpy(np.stack([resize(im.permute(1, 2, 0).numpy()) for im in x])).permute(0, 3, 1, 2)
    with torch.no_grad():
        (want,) = theirs((batch - 128) / 128)  # pyiqa: (x - 128) / 128 in clean mode, normalize_input=False
    got = inception_features(load_fid_inception(str(weights_file), torch.device("cpu")), x, pyiqa_input)
    assert want.abs().max() > 1e-2
    assert (got - want[:, :, 0, 0].double()).abs().max() < 1e-4
