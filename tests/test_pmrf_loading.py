"""PMRF weights in every published format, with random non-zero tensors, load to the same networks."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from _pmrf_tiny import randomize
from lpmrf_bench.models.checkpoint import CheckpointError, load_checkpoint
from lpmrf_bench.models.pmrf_loading import (
    PMRFNetworks,
    PMRFSettings,
    load_pmrf,
    load_posterior_mean,
    save_pmrf,
)
from lpmrf_bench.models.swinir import SWINIR_CONFIGS, SwinIR
from lpmrf_bench.weights import WeightsMissingError

MANIFEST = json.loads((Path(__file__).parent / "manifests" / "pmrf_hf_model_safetensors.json").read_text())
TINY = PMRFSettings(flow_arch="hdit_tiny", mmse_arch="swinir_tiny", input_size=64)
HPARAMS = {  # the training module's kwargs, as PMRF's MMSERectifiedFlow saves them, plus keys we do not read
    "stage": "flow", "arch": "hdit_tiny", "conditional": False, "mmse_model_arch": "swinir_tiny",
    "mmse_noise_std": 0.1, "num_flow_steps": 25, "lr": 5e-4, "weight_decay": 1e-2, "betas": [0.9, 0.95],
    "ema_decay": 0.9999, "eps": 0.0, "t_schedule": "stratified_uniform", "mmse_model_ckpt_path": None,
    "a_key_from_a_later_version": {"x": 1},
}


def tiny_networks(seed):
    return randomize(PMRFNetworks(TINY), seed).eval()


def same_tensors(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def outputs(nets):
    g = torch.Generator().manual_seed(7)
    y, x = torch.rand(1, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    with torch.no_grad():
        return nets.posterior_mean(y), nets.velocity(x, torch.tensor([0.3]))


def write_hf_folder(folder, nets, extra=None, drop=(), hparams=HPARAMS):
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in nets.state_dict().items() if k not in drop}
    gen = torch.Generator().manual_seed(99)  # the training module's FID/IS Inception nets ride along in the file
    state["fid.inception.Conv2d_1a_3x3.conv.weight"] = torch.randn(32, 3, 3, 3, generator=gen)
    state["inception_score.inception.fc.bias"] = torch.randn(1008, generator=gen)
    state.update(extra or {})
    save_file(state, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(hparams))
    return folder


def test_full_size_networks_match_the_hf_layout():
    with torch.device("meta"):
        nets = PMRFNetworks(PMRFSettings())
    got = {k: list(v.shape) for k, v in nets.state_dict().items()}
    assert got == MANIFEST["tensors"] and list(got) == list(MANIFEST["tensors"])
    assert sum(p.numel() for p in nets.parameters()) == MANIFEST["parameters"]


@pytest.mark.slow
def test_hf_folder_loads_and_ignores_foreign_keys(tmp_path):
    nets = tiny_networks(0)
    loaded = load_pmrf(str(write_hf_folder(tmp_path / "hf", nets)))
    assert same_tensors(nets, loaded)
    assert loaded.settings.noise_std == 0.1 and loaded.settings.flow_arch == "hdit_tiny"
    for a, b in zip(outputs(nets), outputs(loaded)):
        assert torch.equal(a, b)


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    nets = tiny_networks(1)
    folder = write_hf_folder(tmp_path / "hf", nets, extra={"model.bogus.weight": torch.ones(2)},
                             drop=("model.out_norm.scale", "mmse_model.conv_last.bias"))
    with pytest.raises(ValueError) as info:
        load_pmrf(str(folder))
    message = str(info.value)
    assert "model.safetensors" in message and "missing 1 keys" in message and "out_norm.scale" in message
    assert "unexpected 1 keys" in message and "bogus.weight" in message


def test_shape_mismatch_is_named(tmp_path):
    nets = tiny_networks(2)
    folder = write_hf_folder(tmp_path / "hf", nets, extra={"model.out_norm.scale": torch.ones(5)})
    with pytest.raises(ValueError, match=r"out_norm.scale: file has \(5,\)"):
        load_pmrf(str(folder))


def test_non_pmrf_config_is_refused(tmp_path):
    folder = write_hf_folder(tmp_path / "hf", tiny_networks(3), hparams={**HPARAMS, "conditional": True})
    with pytest.raises(CheckpointError, match="conditional"):
        load_pmrf(str(folder))


@pytest.mark.slow
def test_lightning_ckpt_uses_ema(tmp_path):
    raw, ema = tiny_networks(4), tiny_networks(5)
    ckpt = {
        "state_dict": raw.state_dict(),
        "hyper_parameters": HPARAMS,
        "ema": {"decay": 0.9999, "num_updates": 10,
                "shadow_params": [p.detach().clone() for p in ema.model.parameters()], "collected_params": None},
        "epoch": 3, "global_step": 1000, "pytorch-lightning_version": "2.1.0", "optimizer_states": [],
    }
    torch.save(ckpt, tmp_path / "pmrf.ckpt")
    loaded = load_pmrf(str(tmp_path / "pmrf.ckpt"))
    assert all(torch.equal(p, q) for p, q in zip(loaded.model.parameters(), ema.model.parameters()))
    # torch_ema tracks parameters only: buffers come from the state dict
    assert all(torch.equal(b, q) for b, q in zip(loaded.model.buffers(), raw.model.buffers()))
    assert same_tensors(loaded.mmse_model, raw.mmse_model)  # the frozen posterior mean is not in the EMA
    assert not torch.equal(outputs(loaded)[1], outputs(raw)[1])


def test_lightning_ema_of_wrong_length_is_refused(tmp_path):
    nets = tiny_networks(6)
    shadow = [p.detach() for p in nets.model.parameters()][:-1]
    torch.save({"state_dict": nets.state_dict(), "hyper_parameters": HPARAMS, "ema": {"shadow_params": shadow}},
               tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match="shadow params"):
        load_pmrf(str(tmp_path / "bad.ckpt"))


def test_our_checkpoint_round_trip(tmp_path):
    nets = tiny_networks(7)
    folder = save_pmrf(tmp_path / "ours", nets, depends_on=({"name": "swinir.pth", "sha256": "ab" * 32},))
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]  # no temp files left
    _, config = load_checkpoint(folder)
    assert config["time_convention"] == "t" and config["time_scale"] == 1.0
    assert config["depends_on"] == [{"name": "swinir.pth", "sha256": "ab" * 32}]
    loaded = load_pmrf(str(folder))
    assert same_tensors(nets, loaded) and loaded.settings == nets.settings


@pytest.mark.slow
def test_difface_pth_with_params_ema_and_module_prefix(tmp_path):
    model = randomize(SwinIR(SWINIR_CONFIGS["swinir_L"]), 8)
    ema = {f"module.{k}": v for k, v in model.state_dict().items()}
    stale = {f"module.{k}": torch.zeros_like(v) for k, v in model.state_dict().items()}
    torch.save({"params": stale, "params_ema": ema}, tmp_path / "swinir_restoration512_L1.pth")
    loaded, size = load_posterior_mean(str(tmp_path / "swinir_restoration512_L1.pth"))
    assert same_tensors(model, loaded) and size == 512


def test_posterior_mean_from_a_pmrf_weight_set(tmp_path):
    nets = tiny_networks(9)
    model, size = load_posterior_mean(str(save_pmrf(tmp_path / "ours", nets)))
    assert same_tensors(model, nets.mmse_model) and size == 64


def test_unrecognised_path_and_offline_official(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="not recognised"):
        load_pmrf(str(tmp_path))
    monkeypatch.setenv("LPMRF_BENCH_WEIGHTS", str(tmp_path / "cache"))
    monkeypatch.setenv("LPMRF_BENCH_OFFLINE", "1")
    with pytest.raises(WeightsMissingError, match="PMRF_blind_face_image_restoration"):
        load_pmrf("official")
    with pytest.raises(WeightsMissingError, match="swinir_restoration512_L1.pth"):
        load_posterior_mean(None)


@pytest.mark.weights
def test_official_weights_load_when_cached():
    from lpmrf_bench.models.pmrf_loading import PMRF_HF_CONFIG, PMRF_HF_WEIGHTS
    from lpmrf_bench.weights import cache_dir, status

    if any(status(wf) != "cached" for wf in (PMRF_HF_CONFIG, PMRF_HF_WEIGHTS)):
        pytest.skip(f"official PMRF weights are not in {cache_dir()} "
                    f"(`lpmrf-bench weights fetch` on a connected machine)")
    nets = load_pmrf("official")
    assert nets.settings.flow_arch == "hdit_ImageNet256Sp4" and nets.settings.mmse_arch == "swinir_L"
