"""CodeFormer: the released layout (manifest), the official forward (reference outputs of sczhou/CodeFormer's own
arch files, tests/reference/codeformer_official.py), loading, the published inference, and a fidelity sweep."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from _codeformer_tiny import REFERENCE_CASES, REFERENCE_SEED, random_state, reference_input
from _pmrf_tiny import perturbed_outputs_differ
from lpmrf_baselines.codeformer import SPEC
from lpmrf_baselines.codeformer.arch import CONFIGS, CodeFormer
from lpmrf_baselines.codeformer.loading import save_codeformer
from lpmrf_bench.cli.main import main
from lpmrf_bench.imageio import write_png
from lpmrf_bench.models.state_dicts import load_state_dict_strict
from lpmrf_bench.plots import pd_tradeoff
from lpmrf_bench.restorers import RESTORERS, RestoreBatch, RestoreInputError, image_seed
from lpmrf_bench.store import load
from lpmrf_bench.weights import WeightsMissingError

HERE = Path(__file__).parent
MANIFEST = json.loads((HERE / "manifests" / "codeformer.json").read_text())
REFERENCE = load_file(str(HERE / "reference" / "codeformer_official_tiny.safetensors"))
TINY = CONFIGS["codeformer_tiny"]
CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny convolutions are dominated by thread hand-offs on a shared CPU (10x slower with 2 threads here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_net(seed: int = REFERENCE_SEED) -> CodeFormer:
    net = CodeFormer(TINY).eval()
    net.load_state_dict(random_state({k: tuple(v.shape) for k, v in net.state_dict().items()}, seed), strict=True)
    return net


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return str(save_codeformer(tmp_path_factory.mktemp("codeformer") / "tiny", tiny_net()))


def make_batch(ids, size=32):
    lq = torch.stack([torch.rand(3, size, size, generator=torch.Generator().manual_seed(sum(map(ord, i))))
                      for i in ids])
    return RestoreBatch(lq=lq, image_ids=ids, seeds=[image_seed(0, "synthetic", i, 0) for i in ids])


def test_released_layout_matches_the_manifest():
    with torch.device("meta"):
        net = CodeFormer()
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert list(got.items()) == list(MANIFEST["tensors"].items())  # keys, order and shapes
    assert sum(p.numel() for p in net.parameters()) == MANIFEST["parameters"] == 94_112_707
    assert not list(net.buffers())


def test_fusion_points_are_the_published_tables():
    with torch.device("meta"):
        net = CodeFormer()
    cfg = net.config  # the literal tables of codeformer_arch.py's CodeFormer.__init__
    assert net.encoder.taps == {"512": 2, "256": 5, "128": 8, "64": 11, "32": 14, "16": 18}
    assert net.generator.taps == {"16": 6, "32": 9, "64": 12, "128": 15, "256": 18, "512": 21}
    assert {s: cfg.channels(int(s)) for s in net.encoder.taps} == {
        "16": 512, "32": 256, "64": 256, "128": 128, "256": 128, "512": 64}


@pytest.mark.parametrize("w, adain", REFERENCE_CASES)
def test_forward_matches_the_official_network(w, adain):
    """Same weights and inputs as the official run; bit-identical on the machine that wrote the reference."""
    with torch.no_grad():
        out, logits, _ = tiny_net()(reference_input(), w=w, adain=adain)
    assert torch.equal(logits.argmax(dim=2), REFERENCE[f"index/w={w}/adain={adain}"])
    torch.testing.assert_close(out, REFERENCE[f"out/w={w}/adain={adain}"], rtol=1e-5, atol=1e-5)


def test_w_zero_skips_the_fusion_layers():
    net, x = tiny_net(), reference_input()
    with torch.no_grad():
        base0, base1 = net(x, w=0.0, adain=True)[0], net(x, w=1.0, adain=True)[0]
        for p in net.fuse_convs_dict.parameters():
            p.add_(0.5)
        assert torch.equal(net(x, w=0.0, adain=True)[0], base0)
        assert not torch.equal(net(x, w=1.0, adain=True)[0], base1)


@pytest.mark.slow
def test_every_loaded_tensor_changes_the_output():
    net, x = tiny_net(), reference_input()[:1]

    def run(m):
        out, logits, _ = m(x, w=0.5, adain=True)
        return torch.cat([out.flatten(), logits.flatten()])

    with torch.no_grad():
        assert perturbed_outputs_differ(net, run) == []


def test_spec_and_entry_point():
    assert RESTORERS.get("codeformer") is SPEC  # found through the installed entry point
    assert SPEC.pd_knob.name == "fidelity" and SPEC.default_knobs() == {"fidelity": 0.5, "precision": "fp32"}
    assert SPEC.input_size == 512 and not SPEC.stochastic and "S-Lab" in SPEC.licence
    assert SPEC.weight_sets["official"][0].source.endswith("/releases/download/v0.1.0/codeformer.pth")
    with pytest.raises(ValueError, match=r"must be in \[0.0, 1.0\]"):
        SPEC.knob("fidelity").parse("1.5")


def test_restore_is_the_published_inference(folder):
    restorer = SPEC.load(folder, CPU)
    batch = make_batch(["a", "b"])
    got = restorer(batch, {"fidelity": 0.7, "precision": "fp32"})
    with torch.no_grad():  # inference_codeformer.py: normalize(0.5, 0.5), net(x, w, adain=True)[0], tensor2img(-1, 1)
        out = restorer.net((batch.lq - 0.5) / 0.5, w=0.7, adain=True)[0]
    want = (out.clamp(-1, 1) - (-1)) / (1 - (-1))
    assert got.shape == (2, 3, 32, 32) and restorer.input_size == 32
    assert torch.equal(got, want)
    assert torch.equal(restorer(make_batch(["a", "b"]), {"fidelity": 0.7, "precision": "fp32"}), got)  # deterministic
    torch.testing.assert_close(restorer(make_batch(["b"]), {"fidelity": 0.7, "precision": "fp32"})[0], got[1],
                               rtol=0, atol=1e-5)  # batch composition changes only the last bits
    assert not torch.equal(restorer(batch, {"fidelity": 0.0, "precision": "fp32"}), got)


def test_bf16_runs_close_to_fp32(folder):
    restorer = SPEC.load(folder, CPU)
    fp32 = restorer(make_batch(["a"]), {"fidelity": 0.5, "precision": "fp32"})
    bf16 = restorer(make_batch(["a"]), {"fidelity": 0.5, "precision": "bf16"})
    assert bf16.dtype == torch.float32 and bf16.isfinite().all()
    assert 0 < (bf16 - fp32).abs().mean() < 0.1


def test_wrong_size_is_refused_per_image(folder):
    restorer = SPEC.load(folder, CPU)
    with pytest.raises(RestoreInputError) as info:
        restorer(make_batch(["x", "y"], size=48), SPEC.default_knobs())
    assert set(info.value.reasons) == {"x", "y"} and "restores 32x32" in info.value.reasons["x"]


@pytest.mark.slow
def test_wrong_files_list_their_keys(tmp_path, folder):
    state = load_file(str(Path(folder) / "model.safetensors"))
    with pytest.raises(ValueError, match=r"missing 1 keys, e\.g\. \['position_emb'\]") as info:
        truncated = {k: v for k, v in state.items() if k != "position_emb"}
        load_state_dict_strict(CodeFormer(TINY), {**truncated, "extra": state["position_emb"]}, "x")
    assert "unexpected 1 keys, e.g. ['extra']" in str(info.value)
    wrong = tmp_path / "wrong.pth"
    torch.save({"params_ema": {"position_emb": torch.ones(256, 512), "foo.weight": torch.ones(1)}}, wrong)
    with pytest.raises(ValueError) as info:
        SPEC.load(str(wrong), CPU)
    assert "missing 514 keys" in str(info.value) and "unexpected 1 keys, e.g. ['foo.weight']" in str(info.value)
    result = CliRunner().invoke(main, ["run", "--methods", "codeformer", "--weights", f"codeformer={wrong}",
                                       "--datasets", "synthetic-faces", "--limit", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "Error: codeformer: " in result.output and "missing 514 keys" in result.output
    assert "Traceback" not in result.output
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(wrong.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        SPEC.load(str(truncated), CPU)


def test_missing_release_file_is_one_message_naming_source_and_place():
    with pytest.raises(WeightsMissingError) as info:  # the tests run offline with an empty cache
        SPEC.load(None, CPU)
    message = str(info.value)
    assert "codeformer.pth" in message and "sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth" in message
    assert "codeformer/codeformer.pth" in message  # where to put it in the cache


@pytest.mark.slow
def test_a_file_in_the_released_layout_loads_strictly(tmp_path):
    shapes = {k: tuple(v) for k, v in MANIFEST["tensors"].items()}
    state = random_state(shapes, seed=5)
    path = tmp_path / "codeformer.pth"
    torch.save({"params_ema": state}, path)
    net = SPEC.load(str(path), CPU).net
    assert net.config == CONFIGS["codeformer"]
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_fidelity_sweep_is_one_configuration_per_w_and_a_pd_curve(tmp_path, folder):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        clean = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        write_png(tmp_path / "pairs" / "gt" / f"{name}.png", clean)
        write_png(tmp_path / "pairs" / "lq" / f"{name}.png", (clean // 2 + 64).astype(np.uint8))
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "run", "--methods", "codeformer", "--weights", f"codeformer={folder}", "--datasets", str(tmp_path / "pairs"),
        "--sweep", "fidelity=0,0.5,1", "--metrics", "psnr,ssim", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = load(out)
    assert sorted(rows["knob_fidelity"].unique()) == [0.0, 0.5, 1.0] and rows["config_id"].nunique() == 3
    sets = pd.read_parquet(out / "sets.parquet")
    ax = pd_tradeoff(sets, "psnr", "ssim").axes[0]
    assert {t.get_text() for t in ax.texts} == {"fidelity=0", "fidelity=0.5", "fidelity=1"}
    line = {container.get_label(): container.lines[0] for container in ax.containers}["codeformer"]
    want = sets[sets.metric == "psnr"].sort_values("knob_fidelity")["value"].to_numpy()
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), want)
    assert line.get_linestyle() == "-"
