"""GFPGAN clean network: the released layout (manifest), the official forward (reference outputs written by
gfpgan 1.3.8's own arch files, tests/reference/gfpgan_clean.py), strict loading of release-format files."""
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from _gfpgan_tiny import REFERENCE, TINY, TINY_CONFIG, one_thread, reference_inputs, tiny_net  # noqa: F401
from _pmrf_tiny import perturbed_outputs_differ
from lpmrf_baselines.gfpgan.network import GFPGAN_CONFIGS, GFPGANv1Clean
from lpmrf_baselines.gfpgan.restorer import load_gfpgan_file

MANIFEST = json.loads((Path(__file__).parent / "manifests" / "gfpgan_v1_clean_512.json").read_text())
# parts of the published network that the published inference never uses (see network.py's docstring)
UNUSED = ("toRGB.", "stylegan_decoder.style_mlp.", "stylegan_decoder.noises.")


def test_released_layout_matches_the_manifest():
    with torch.device("meta"):
        net = GFPGANv1Clean(GFPGAN_CONFIGS["gfpgan_v1_clean"])
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert list(got) == list(MANIFEST["tensors"])  # same keys, same (published) order
    assert got == MANIFEST["tensors"]
    assert sum(p.numel() for p in net.parameters()) == MANIFEST["parameters"]
    assert [k for k, _ in net.named_buffers()] == MANIFEST["buffers"]


def test_tiny_config_is_the_one_the_reference_used():
    with safe_open(str(REFERENCE / "gfpgan_clean.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["config"]) == TINY
    assert {k: getattr(TINY_CONFIG, k) for k in TINY} == TINY


def test_forward_matches_the_official_network():
    with safe_open(str(REFERENCE / "gfpgan_clean.safetensors"), "pt") as f:
        want = f.get_tensor("output")
    net = tiny_net()
    x, noise = reference_inputs(net.noise_shapes())
    with torch.no_grad():
        got = net(x, noise)
    assert got.shape == want.shape == (2, 3, 32, 32)
    assert 0.1 < want.std().item() < 10  # the reference is not saturated or degenerate
    assert (got - want).abs().max().item() < 1e-10


def test_noise_reaches_every_injection_point():
    net = tiny_net()
    x, noise = reference_inputs(net.noise_shapes())
    with torch.no_grad():
        base = net(x, noise)
        for i in range(len(noise)):
            changed = [n + (1.0 if j == i else 0.0) for j, n in enumerate(noise)]
            assert not torch.equal(net(x, changed), base), f"noise {i} has no effect"


@pytest.mark.slow
def test_every_loaded_tensor_changes_the_output_except_the_unused_parts():
    net = tiny_net(torch.float32)
    x, noise = reference_inputs(net.noise_shapes())
    x, noise = x.float(), [n.float() for n in noise]
    with torch.no_grad():
        unchanged = perturbed_outputs_differ(net, lambda m: m(x, noise))
    assert unchanged == [k for k in net.state_dict() if k.startswith(UNUSED)]
    assert any(k.startswith("toRGB.") for k in unchanged) and "stylegan_decoder.noises.noise0" in unchanged


def save_release(path, params_ema=None, params=None):
    content = {k: v for k, v in (("params_ema", params_ema), ("params", params)) if v is not None}
    torch.save(content, path)
    return path


def test_release_file_loads_params_ema_strictly(tmp_path):
    ema = tiny_net(torch.float32).state_dict()
    raw = {k: v + 1 for k, v in ema.items()}
    net = load_gfpgan_file(save_release(tmp_path / "both.pth", ema, raw), TINY_CONFIG)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in ema.items())
    net = load_gfpgan_file(save_release(tmp_path / "params.pth", params=raw), TINY_CONFIG)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in raw.items())


def test_wrong_file_lists_the_bad_keys(tmp_path):
    state = dict(tiny_net(torch.float32).state_dict())
    del state["final_linear.weight"]
    state["conv_body_first.weight"] = torch.zeros(1, 3, 1, 1)
    state["stylegan_decoder.extra"] = torch.zeros(1)
    with pytest.raises(ValueError) as err:
        load_gfpgan_file(save_release(tmp_path / "bad.pth", state), TINY_CONFIG)
    message = str(err.value)
    assert "bad.pth" in message and "final_linear.weight" in message and "stylegan_decoder.extra" in message
    assert "conv_body_first.weight: file has (1, 3, 1, 1)" in message


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "foreign.pth"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="foreign.pth is not a readable PyTorch checkpoint"):
        load_gfpgan_file(path, TINY_CONFIG)
