"""Sim-VAE: published layout, forward maths, shapes, loading by folder and by Hugging Face name."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from _latent_tiny import published_vae_config as published_config
from _latent_tiny import random_vae_state, write_vae_folder as write_folder
from lpmrf_bench.models.sim_vae import PUBLISHED, SimVAE, SimVAEConfig, load_sim_vae
from lpmrf_bench.weights import WeightsMissingError, cache_dir

MANIFEST = Path(__file__).parent / "manifests" / "sim_vae_c32.json"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    state = random_vae_state(published_config())
    return write_folder(tmp_path_factory.mktemp("simvae"), published_config(), state), state


def test_published_layout_matches_manifest():
    manifest = json.loads(MANIFEST.read_text())
    cfg = SimVAEConfig.from_diffusers({"_class_name": "AutoencoderKLSim", **manifest["config"]})
    got = {k: list(v.shape) for k, v in SimVAE(cfg).state_dict().items()}
    assert got == manifest["keys"]
    assert sum(math.prod(s) for s in got.values()) == manifest["parameters"]
    assert round(manifest["parameters"] / 1e6, 1) == 91.0  # FACTS.md: 91.0M parameters for c32


# An independent re-statement of the published forward (vae.py / blocks.py / norm.py), over the raw tensors.
def _conv(x, sd, p, stride=1):
    return F.conv2d(x, sd[f"{p}.weight"], sd[f"{p}.bias"], stride=stride, padding=1)


def _resnet(x, sd, p):
    c = x.shape[1]
    h = F.layer_norm(x.permute(0, 2, 3, 1), (c,), sd[f"{p}.norm.weight"], sd[f"{p}.norm.bias"], 1e-6).permute(0, 3, 1, 2)
    h = _conv(F.silu(_conv(h, sd, f"{p}.conv1")), sd, f"{p}.conv2")
    return x + h


def reference_encode(x, sd, n_blocks=4, lpb=2, lmid=2):
    x = _conv(x, sd, "encoder.conv_in")
    for i in range(n_blocks):
        for j in range(lpb):
            x = _resnet(x, sd, f"encoder.down_blocks.{i}.resnets.{j}")
        if i < n_blocks - 1:
            x = _conv(x, sd, f"encoder.down_blocks.{i}.downsampler.conv", stride=2)
    for j in range(lmid):
        x = _resnet(x, sd, f"encoder.mid_block.resnets.{j}")
    mean, logvar = _conv(x, sd, "encoder.conv_out").chunk(2, dim=1)
    return mean, torch.clamp(logvar, -30.0, 20.0)


def reference_decode(z, sd, n_blocks=4, lpb=2, lmid=2):
    x = _conv(z, sd, "decoder.conv_in")
    for j in range(lmid):
        x = _resnet(x, sd, f"decoder.mid_block.resnets.{j}")
    for i in range(n_blocks):
        for j in range(lpb + 1):
            x = _resnet(x, sd, f"decoder.up_blocks.{i}.resnets.{j}")
        if i < n_blocks - 1:
            x = _conv(x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3), sd, f"decoder.up_blocks.{i}.upsampler.conv")
    return _conv(x, sd, "decoder.conv_out")


@pytest.mark.slow
def test_folder_loads_and_matches_reference_forward(tiny_folder):
    folder, state = tiny_folder
    vae = load_sim_vae(folder)
    assert vae.name == str(folder) and len(vae.sha256) == 64
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        mean, logvar = vae.model.encode(x)
        ref_mean, ref_logvar = reference_encode(x, state)
        torch.testing.assert_close(mean, ref_mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(logvar, ref_logvar, rtol=1e-4, atol=1e-5)
        z = torch.randn(2, 4, 4, 6, generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(vae.model.decode(z), reference_decode(z, state), rtol=1e-4, atol=1e-4)


def test_decode_under_bf16_autocast_follows_the_published_upcast(tiny_folder):
    """Published Decoder.forward casts the mid block's output to the up blocks' weight dtype before them.

    Under bf16 autocast with fp32 weights that keeps the up blocks' residual stream in fp32; without the cast
    it stays bf16 (5% apart with these random weights).
    """
    folder, state = tiny_folder
    vae = load_sim_vae(folder).model
    z = torch.randn(2, 4, 4, 6, generator=torch.Generator().manual_seed(2))

    def published_decode(z):
        x = _conv(z, state, "decoder.conv_in")
        for j in range(2):
            x = _resnet(x, state, f"decoder.mid_block.resnets.{j}")
        x = x.to(state["decoder.up_blocks.0.resnets.0.conv1.weight"].dtype)  # the published upcast
        for i in range(4):
            for j in range(3):
                x = _resnet(x, state, f"decoder.up_blocks.{i}.resnets.{j}")
            if i < 3:
                x = _conv(x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3), state, f"decoder.up_blocks.{i}.upsampler.conv")
        return _conv(x, state, "decoder.conv_out")

    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ours, expected = vae.decode(z).float(), published_decode(z).float()
    torch.testing.assert_close(ours, expected, rtol=1e-3, atol=1e-3 * expected.abs().max().item())


@pytest.mark.parametrize("size", [(8, 8), (16, 40), (64, 32)])
def test_encode_decode_shapes(tiny_folder, size):
    vae = load_sim_vae(tiny_folder[0]).model
    x = torch.zeros(1, 3, *size)
    with torch.no_grad():
        mean, logvar = vae.encode(x)
        assert mean.shape == logvar.shape == (1, 4, size[0] // 8, size[1] // 8)
        assert vae.decode(mean).shape == (1, 3, *size)


def test_sample_uses_the_given_noise():
    mean, logvar, noise = torch.full((1, 2, 1, 1), 0.5), torch.full((1, 2, 1, 1), math.log(4.0)), torch.ones(1, 2, 1, 1)
    assert torch.allclose(SimVAE.sample(mean, logvar, noise), torch.full((1, 2, 1, 1), 2.5))


def test_side_not_multiple_of_eight_is_refused(tiny_folder):
    with pytest.raises(ValueError, match="multiples of 8"):
        load_sim_vae(tiny_folder[0]).model.encode(torch.zeros(1, 3, 12, 16))


@pytest.mark.slow
def test_every_loaded_tensor_matters(tiny_folder):
    folder, _ = tiny_folder
    model = load_sim_vae(folder).model
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    z = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(4))

    def output(name: str) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat(model.encode(x)) if name.startswith("encoder.") else model.decode(z)

    for name, tensor in model.state_dict().items():
        base = output(name)
        saved = tensor.clone()
        tensor.add_(0.05)
        assert not torch.equal(output(name), base), f"perturbing {name} changed nothing"
        tensor.copy_(saved)


def test_mismatched_files_are_refused(tmp_path, tiny_folder):
    _, state = tiny_folder
    broken = {k: v for k, v in state.items() if k != "decoder.conv_out.bias"}
    folder = write_folder(tmp_path / "broken", published_config(), broken)
    with pytest.raises(ValueError, match="decoder.conv_out.bias"):
        load_sim_vae(folder)
    folder = write_folder(tmp_path / "wrongclass", published_config(_class_name="AutoencoderKL"), state)
    with pytest.raises(ValueError, match="_class_name"):
        load_sim_vae(folder)
    folder = write_folder(tmp_path / "scaled", published_config(scaling_factor=0.18215), state)
    with pytest.raises(ValueError, match="scaling_factor"):
        load_sim_vae(folder)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_sim_vae(tmp_path / "nothing")


def test_loads_by_hugging_face_name_from_the_cache(tmp_path, tiny_folder, monkeypatch):
    folder, _ = tiny_folder
    monkeypatch.setenv("LPMRF_BENCH_OFFLINE", "1")
    with pytest.raises(WeightsMissingError, match="sienna223/Sim-VAE-c32"):
        load_sim_vae("sim-vae-c32", weights_dir=tmp_path)
    pub = PUBLISHED["sim-vae-c32"]
    for wf, name in ((pub.config, "config.json"), (pub.weights, "diffusion_pytorch_model.safetensors")):
        target = tmp_path / wf.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((folder / name).read_bytes())
    loaded = load_sim_vae("sim-vae-c32", weights_dir=tmp_path)
    assert loaded.name == "sim-vae-c32"
    assert loaded.sha256 == json.loads((tmp_path / "hashes.json").read_text())[pub.weights.path]


@pytest.mark.weights
def test_published_sim_vae_c32_reconstructs():
    pub = PUBLISHED["sim-vae-c32"]
    if not (cache_dir() / pub.weights.path).is_file():
        pytest.skip(f"{pub.weights.path} is not in the weights cache ({cache_dir()}); fetch {pub.weights.source}")
    vae = load_sim_vae("sim-vae-c32").model
    assert round(sum(p.numel() for p in vae.parameters()) / 1e6, 1) == 91.0
    x = torch.linspace(-1, 1, 64 * 64).view(1, 1, 64, 64).expand(1, 3, 64, 64).contiguous()
    with torch.no_grad():
        psnr = 10 * torch.log10(4 / F.mse_loss(vae(x).clamp(-1, 1), x))
    assert psnr > 30
