"""The pmrf and posterior-mean restorers end to end on tiny networks (CPU, 32x32)."""
import subprocess
import sys

import pytest
import torch

from _pmrf_tiny import in_range_posterior_mean, randomize
from lpmrf_bench.models.pmrf_loading import PMRFNetworks, PMRFSettings, save_pmrf
from lpmrf_bench.restorers.base import RestoreBatch, RestoreInputError, image_seed
from lpmrf_bench.restorers.pmrf import PMRF, POSTERIOR_MEAN

TINY = PMRFSettings(flow_arch="hdit_tiny", mmse_arch="swinir_tiny", input_size=32)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    nets = randomize(PMRFNetworks(TINY), 0)
    in_range_posterior_mean(nets, make_batch(["a", "b"]).lq)
    return str(save_pmrf(tmp_path_factory.mktemp("pmrf") / "tiny", nets))


@pytest.fixture(scope="module")
def restorer(folder):
    return PMRF.load(folder, CPU)


def make_batch(ids, seed=0):
    lq = torch.stack([torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(sum(map(ord, i)))) for i in ids])
    return RestoreBatch(lq=lq, image_ids=ids, seeds=[image_seed(seed, "synthetic", i, 0) for i in ids])


def knobs(**kw):
    return {**PMRF.default_knobs(), "steps": 3, **kw}


def test_spec_metadata():
    assert PMRF.pd_knob.name == "steps" and PMRF.default_knobs() == {"steps": 25, "noise_std": 0.1, "precision": "fp32"}
    assert PMRF.knob("precision").choices == ("fp32", "bf16") and PMRF.input_size == 512 and PMRF.stochastic
    assert POSTERIOR_MEAN.name == "posterior-mean" and not POSTERIOR_MEAN.stochastic
    assert {wf.filename for wf in PMRF.weight_sets["official"]} == {"config.json", "model.safetensors"}


def test_sampling_off_the_training_noise_is_said_once_per_value(folder, caplog):
    fresh = PMRF.load(folder, CPU)  # TINY records the default noise_std, 0.1
    batch = make_batch(["a"])
    with caplog.at_level("WARNING", logger="lpmrf_bench.restorers.base"):
        fresh(batch, knobs(steps=1))
        assert caplog.messages == []
        for value in (0.3, 0.3, 0.2):
            fresh(batch, knobs(steps=1, noise_std=value))
    assert caplog.messages == [
        f"pmrf samples with noise_std={v} but these weights were trained with 0.1; --set noise_std=0.1 samples as "
        "trained" for v in (0.3, 0.2)]


@pytest.mark.slow
def test_matches_the_published_sampling_loop(restorer):
    batch = make_batch(["a", "b"])
    got = restorer(batch, knobs(steps=4))
    nets = restorer.nets
    with torch.no_grad():  # MMSERectifiedFlow.generate_reconstructions, written out
        x = nets.mmse_model(batch.lq).clip(0, 1) + batch.noise((3, 32, 32), "flow-source") * 0.1
        for i in range(4):
            x = x + nets.model(x, torch.ones(2) * (i / 4)) * (1.0 / 4)
    assert got.shape == (2, 3, 32, 32) and 0 <= got.min() and got.max() <= 1
    torch.testing.assert_close(got, x.clip(0, 1), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_seed_reproduces_bit_for_bit_and_differs_across_seeds(restorer):
    a = restorer(make_batch(["a", "b"]), knobs())
    b = restorer(make_batch(["a", "b"]), knobs())
    c = restorer(make_batch(["a", "b"], seed=1), knobs())
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.slow
def test_result_does_not_depend_on_batch_composition(restorer):
    pair = restorer(make_batch(["a", "b"]), knobs())
    alone = restorer(make_batch(["b"]), knobs())
    torch.testing.assert_close(pair[1:], alone, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_posterior_mean_computed_once_per_batch_across_a_sweep(restorer):
    calls = []
    hook = restorer.nets.mmse_model.register_forward_hook(lambda *a: calls.append(1))
    try:
        batch = make_batch(["a", "b"])
        outs = [restorer(batch, knobs(steps=k)) for k in (1, 2, 3)]
    finally:
        hook.remove()
    assert len(calls) == 1 and not torch.equal(outs[0], outs[2])
    # K = 1 is one Euler step from the same source noise: the noise draw is shared by every K
    with torch.no_grad():
        z0 = batch.cache["posterior-mean/fp32"] + 0.1 * batch.noise((3, 32, 32), "flow-source")
        one = (z0 + restorer.nets.model(z0, torch.zeros(2))).clamp(0, 1)
    torch.testing.assert_close(outs[0], one, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_bf16_precision_runs_close(restorer):
    batch = make_batch(["a"])
    full = restorer(batch, knobs())
    low = restorer(batch, knobs(precision="bf16"))
    assert low.dtype == torch.float32 and (low - full).abs().mean().item() < 0.05


def test_posterior_mean_restorer(folder, restorer):
    pm = POSTERIOR_MEAN.load(folder, CPU)
    batch = make_batch(["a"])
    with torch.no_grad():
        want = restorer.nets.mmse_model(batch.lq).clamp(0, 1)
    assert ((want > 0) & (want < 1)).float().mean() > 0.9  # unclipped: the comparison sees the network
    torch.testing.assert_close(pm(batch, POSTERIOR_MEAN.default_knobs()), want, rtol=0, atol=0)


def test_wrong_size_names_the_required_size_per_image(restorer, folder):
    batch = RestoreBatch(lq=torch.rand(2, 3, 64, 64), image_ids=["x", "y"], seeds=[1, 2])
    for loaded in (restorer, POSTERIOR_MEAN.load(folder, CPU)):
        with pytest.raises(RestoreInputError) as info:
            loaded(batch, knobs())
        assert set(info.value.reasons) == {"x", "y"} and "32x32" in info.value.reasons["x"]
    assert restorer.input_size == 32


@pytest.mark.slow
def test_import_is_lazy_and_official_load_fails_clearly(tmp_path):
    code = (
        "import lpmrf_bench.restorers.pmrf as m, torch\n"
        "try:\n    m.PMRF.load('official', torch.device('cpu'))\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    env = {"LPMRF_BENCH_WEIGHTS": str(tmp_path), "LPMRF_BENCH_OFFLINE": "1", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "WeightsMissingError" in out.stdout and "ohayonguy/PMRF_blind_face_image_restoration" in out.stdout
    assert not any(tmp_path.iterdir())  # nothing was written or downloaded


@pytest.mark.slow
def test_sigma_convention_checkpoint_integrates_from_sigma_one(tmp_path):
    # a flow trained in the reversed convention: the network sees sigma * time_scale, sigma from 1 to 0
    settings = PMRFSettings(flow_arch="hdit_tiny", mmse_arch="swinir_tiny", input_size=32,
                            time_convention="sigma", time_scale=1000.0)
    nets = randomize(PMRFNetworks(settings), 3)
    loaded = PMRF.load(str(save_pmrf(tmp_path / "sigma", nets)), CPU)
    batch = make_batch(["a"])
    got = loaded(batch, knobs(steps=2))
    with torch.no_grad():
        x = nets.mmse_model(batch.lq).clip(0, 1) + 0.1 * batch.noise((3, 32, 32), "flow-source")
        x = x - 0.5 * nets.model(x, torch.tensor([1000.0]))
        x = x - 0.5 * nets.model(x, torch.tensor([500.0]))
    torch.testing.assert_close(got, x.clamp(0, 1), rtol=0, atol=1e-6)


def published_generate_reconstructions(nets, lq, noise, steps, eps, noise_std=0.1):
    """MMSERectifiedFlow.generate_reconstructions (ohayonguy/PMRF lightning_models/mmse_rectified_flow.py),
    restated op for op: a constant Python-float dt = (1/K)(1-eps) and t_i = (i/K)(1-eps)+eps formed in double."""
    with torch.no_grad():
        x = nets.mmse_model(lq).clip(0, 1) + noise * noise_std
        dt = (1.0 / steps) * (1.0 - eps)
        t_one = torch.ones(lq.shape[0])
        for i in range(steps):
            num_t = (i / steps) * (1.0 - eps) + eps
            v = nets.model(x, t_one * num_t).to(x.dtype)
            x = x.clone() + v * dt
        return x.clip(0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("steps", [5, 25])
def test_euler_steps_are_bit_exact_with_the_published_loop(restorer, steps):
    # at K = 5 or 25 most grid differences round32((i+1)/K) - round32(i/K) differ from round32(1/K) in the last
    # bit; the published loop multiplies every velocity by the same dt, so the outputs must be identical bits
    batch = make_batch(["a", "b"])
    got = restorer(batch, knobs(steps=steps))
    want = published_generate_reconstructions(restorer.nets, batch.lq, batch.noise((3, 32, 32), "flow-source"), steps, 0.0)
    assert torch.equal(got, want)


@pytest.mark.slow
def test_nonzero_eps_offsets_times_and_shrinks_dt_as_published(tmp_path):
    settings = PMRFSettings(flow_arch="hdit_tiny", mmse_arch="swinir_tiny", input_size=32, eps=0.03)
    nets = randomize(PMRFNetworks(settings), 4)
    loaded = PMRF.load(str(save_pmrf(tmp_path / "eps", nets)), CPU)
    assert loaded.nets.settings.eps == 0.03
    batch = make_batch(["a"])
    got = loaded(batch, knobs(steps=5))
    want = published_generate_reconstructions(loaded.nets, batch.lq, batch.noise((3, 32, 32), "flow-source"), 5, 0.03)
    assert torch.equal(got, want)
