"""The `latent-pmrf` and `vae-recon` restorers: pipeline maths, seeding, time conventions, refusals."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from _latent_tiny import published_vae_config, random_vae_state, randomize_flow, write_vae_folder
from _pmrf_tiny import randomize
from lpmrf_bench.models.checkpoint import CheckpointError
from lpmrf_bench.models.latent_flow import LatentFlow, LatentFlowConfig
from lpmrf_bench.models.pmrf_loading import PMRFNetworks, PMRFSettings, save_pmrf
from lpmrf_bench.models.sim_vae import load_sim_vae
from lpmrf_bench.restorers.base import RestoreBatch, RestoreInputError, image_seed
from lpmrf_bench.restorers.latent_pmrf import (
    LATENT_PMRF,
    VAE_RECON,
    WeightsRef,
    posterior_mean_ref,
    save_latent_pmrf,
)
from lpmrf_bench.weights import WeightsMissingError, sha256_of

CPU = torch.device("cpu")
SIZE = 64  # swinir_tiny restores 64 x 64 images; the tiny VAE makes that an 8 x 8 latent


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> dict:
    """A tiny VAE folder, a tiny posterior mean (inside a PMRF checkpoint) and a random tiny flow."""
    root = tmp_path_factory.mktemp("latent-pmrf-parts")
    nets = randomize(PMRFNetworks(PMRFSettings(flow_arch="hdit_tiny", mmse_arch="swinir_tiny", input_size=SIZE)), seed=2)
    pm_dir = save_pmrf(root / "posterior_mean", nets)
    flow = randomize_flow(LatentFlow(LatentFlowConfig.tiny(in_channels=4)), seed=3)
    vae_dir = write_vae_folder(root / "vae", published_vae_config(), _unsaturated_vae_state(nets.mmse_model, flow))
    return {"root": root, "vae": vae_dir, "pm": pm_dir, "flow": flow, "mmse": nets.mmse_model}


def _unsaturated_vae_state(mmse, flow) -> dict[str, torch.Tensor]:
    """Random non-zero VAE weights with the decoder's last conv rescaled so restorations land inside (0, 1).

    Unscaled random weights give posterior stds up to e^10 and decode to values in the thousands, which the
    final clamp turns into 0 and 1 for every pixel: a test comparing such outputs could not see any difference
    in the latent pipeline. The rescaling keeps the posterior narrow and centres and shrinks what the decoder
    gives for latents where a few Euler steps end.
    """
    from lpmrf_bench.models.sim_vae import SimVAE, SimVAEConfig

    config = published_vae_config()
    state = random_vae_state(config, seed=1)
    half = config["latent_channels"]  # encoder.conv_out gives (mean, logvar): keep the posterior's std near 0.1
    state["encoder.conv_out.weight"][half:] *= 1e-3
    state["encoder.conv_out.bias"][half:] = -4.6
    vae = SimVAE(SimVAEConfig.from_diffusers(config))
    vae.load_state_dict(state)
    with torch.no_grad():
        mean, logvar = vae.encode(2 * mmse(make_batch().lq).clamp(0, 1) - 1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=torch.Generator().manual_seed(0))
        for i in range(4):
            z = z - 0.25 * flow(z, torch.full((z.shape[0],), 1 - i / 4))
        decoded = vae.decode(z)
    mean, scale = decoded.mean(dim=(0, 2, 3)), 0.3 / decoded.std().item()
    state["decoder.conv_out.weight"] = state["decoder.conv_out.weight"] * scale
    state["decoder.conv_out.bias"] = (state["decoder.conv_out.bias"] - mean) * scale
    return state


def save_flow(folder: Path, parts: dict, flow: LatentFlow | None = None, **settings) -> Path:
    """A checkpoint that records its VAE and posterior mean by absolute path, as training would."""
    vae = WeightsRef(str(parts["vae"]), sha256_of(parts["vae"] / "diffusion_pytorch_model.safetensors"))
    return save_latent_pmrf(folder, flow or parts["flow"], vae, posterior_mean_ref(str(parts["pm"])), **settings)


def make_batch(seed: int = 7, n: int = 2, gt: bool = False) -> RestoreBatch:
    gen = torch.Generator().manual_seed(seed)
    ids = [f"face{i}" for i in range(n)]
    return RestoreBatch(
        lq=torch.rand(n, 3, SIZE, SIZE, generator=gen),
        image_ids=ids,
        seeds=[image_seed(seed, "test", i, 0) for i in ids],
        gt=torch.rand(n, 3, SIZE, SIZE, generator=gen) if gt else None,
    )


KNOBS = {"steps": 4, "noise_std": 0.1, "latent_sample": "sample", "schedule": "uniform", "precision": "fp32"}


def test_knobs_as_specified():
    assert LATENT_PMRF.default_knobs() == {"steps": 25, "noise_std": 0.1, "latent_sample": "sample",
                                           "schedule": "flow-match", "precision": "fp32"}
    assert LATENT_PMRF.pd_knob.name == "steps" and LATENT_PMRF.stochastic
    assert LATENT_PMRF.knob("latent_sample").choices == ("sample", "mode")
    assert LATENT_PMRF.knob("precision").choices == ("fp32", "bf16")
    assert VAE_RECON.default_knobs() == {"latent_sample": "mode"}


def test_without_a_checkpoint_says_how_to_get_one():
    with pytest.raises(WeightsMissingError, match="never published.*lpmrf-bench train"):
        LATENT_PMRF.load(None, CPU)


@pytest.mark.slow
def test_output_follows_the_published_pipeline(tmp_path, parts):
    """An explicit re-statement: x̂ -> posterior draw -> + 0.1 eps -> Euler in sigma (1 -> 0) -> decode."""
    restorer = LATENT_PMRF.load(str(save_flow(tmp_path / "ckpt", parts)), CPU)
    batch = make_batch()
    out = restorer(batch, KNOBS)
    vae, flow, k = load_sim_vae(parts["vae"]).model, parts["flow"], KNOBS["steps"]
    with torch.no_grad():
        xhat = parts["mmse"](batch.lq).clamp(0, 1)
        mean, logvar = vae.encode(2 * xhat - 1)
        z = mean + torch.exp(0.5 * logvar) * batch.noise(mean.shape[1:], "vae-posterior")
        z = z + 0.1 * batch.noise(mean.shape[1:], "flow-source")
        for i in range(k):
            sigma = 1 - i / k
            z = z - (1 / k) * flow(z, torch.full((2,), sigma))
        expected = ((vae.decode(z) + 1) / 2).clamp(0, 1)
    assert out.shape == (2, 3, SIZE, SIZE) and out.dtype == torch.float32
    assert ((out > 0) & (out < 1)).float().mean() > 0.9  # not saturated: the comparison can see the pipeline
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_sampling_off_the_recorded_training_noise_is_said(tmp_path, parts, caplog):
    restorer = LATENT_PMRF.load(str(save_flow(tmp_path / "ckpt", parts, noise_std=0.3)), CPU)
    batch = make_batch(n=1)
    with caplog.at_level("WARNING", logger="lpmrf_bench.restorers.base"):
        restorer(batch, {**KNOBS, "steps": 1, "noise_std": 0.3})
        assert caplog.messages == []
        restorer(batch, {**KNOBS, "steps": 1})
        restorer(batch, {**KNOBS, "steps": 1})
    assert caplog.messages == ["latent-pmrf samples with noise_std=0.1 but these weights were trained with 0.3; "
                               "--set noise_std=0.3 samples as trained"]


@pytest.mark.slow
def test_flow_match_schedule_is_diffusers_grid(tmp_path, parts):
    """The published sampler: FlowMatchEulerDiscreteScheduler(shift=1).set_timesteps(K), sigmas
    linspace(1, 0.001, K) then 0, written out as a loop."""
    restorer = LATENT_PMRF.load(str(save_flow(tmp_path / "ckpt", parts)), CPU)
    batch = make_batch()
    out = restorer(batch, {**KNOBS, "schedule": "flow-match"})
    vae, flow, k = load_sim_vae(parts["vae"]).model, parts["flow"], KNOBS["steps"]
    sigmas = [1.0 - i * (1.0 - 0.001) / (k - 1) for i in range(k)] + [0.0]
    with torch.no_grad():
        xhat = parts["mmse"](batch.lq).clamp(0, 1)
        mean, logvar = vae.encode(2 * xhat - 1)
        z = mean + torch.exp(0.5 * logvar) * batch.noise(mean.shape[1:], "vae-posterior")
        z = z + 0.1 * batch.noise(mean.shape[1:], "flow-source")
        for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
            z = z + (sigma_next - sigma) * flow(z, torch.full((2,), sigma))
        expected = ((vae.decode(z) + 1) / 2).clamp(0, 1)
    error = (out - expected).abs().max()
    assert error < 1e-5
    assert (out - restorer(batch, KNOBS)).abs().max() > 20 * error  # the check can tell the two grids apart


@pytest.mark.slow
def test_posterior_mean_comes_from_the_shared_batch_cache(tmp_path, parts):
    """`pmrf` and `posterior-mean` store x̂ under the same key; Latent-PMRF must read it, not recompute it."""
    restorer = LATENT_PMRF.load(str(save_flow(tmp_path / "ckpt", parts)), CPU)
    batch, cached = make_batch(), make_batch()
    cached.cache["posterior-mean/fp32"] = torch.full_like(batch.lq, 0.5)
    assert not torch.equal(restorer(batch, KNOBS), restorer(cached, KNOBS))
    computed = batch.cache["posterior-mean/fp32"]
    with torch.no_grad():
        torch.testing.assert_close(computed, parts["mmse"](batch.lq).clamp(0, 1))


@pytest.mark.slow
def test_a_seed_reproduces_the_output_bit_for_bit(tmp_path, parts):
    folder = str(save_flow(tmp_path / "ckpt", parts))
    first = LATENT_PMRF.load(folder, CPU)(make_batch(seed=7), KNOBS)
    again = LATENT_PMRF.load(folder, CPU)(make_batch(seed=7), KNOBS)
    assert torch.equal(first, again)
    other_seed = make_batch(seed=7)
    other_seed.seeds = [image_seed(8, "test", i, 0) for i in other_seed.image_ids]
    assert not torch.equal(first, LATENT_PMRF.load(folder, CPU)(other_seed, KNOBS))
    assert not torch.equal(first, LATENT_PMRF.load(folder, CPU)(make_batch(seed=7), {**KNOBS, "latent_sample": "mode"}))


def sigma_twin(flow: LatentFlow) -> LatentFlow:
    """The same ODE in the other convention: B(x, sigma) = -A(x, 1 - sigma), exactly, for integer frequencies.

    With integer Fourier frequencies f, cos(2 pi f (1 - t)) = cos(2 pi f t) and sin(2 pi f (1 - t)) = -sin(2 pi f t):
    negating the sine columns of the time projection reverses time; negating the output layer negates v.
    """
    twin = LatentFlow(flow.config)
    twin.load_state_dict(flow.state_dict())
    half = flow.config.time_dim // 2
    with torch.no_grad():
        twin.time_in.weight[:, half:].neg_()
        twin.proj_out.weight.neg_()
        twin.proj_out.bias.neg_()
    return twin


@pytest.mark.slow
def test_both_time_conventions_give_the_same_restoration(tmp_path, parts):
    flow_t = LatentFlow(parts["flow"].config)
    flow_t.load_state_dict(parts["flow"].state_dict())
    with torch.no_grad():
        freqs = torch.randint(1, 4, flow_t.time_emb.weight.shape, generator=torch.Generator().manual_seed(0)).float()
        flow_t.time_emb.weight.copy_(freqs * torch.sign(torch.randn(freqs.shape, generator=torch.Generator().manual_seed(1))))
    t_dir = save_flow(tmp_path / "t", parts, flow_t, time_convention="t")
    sigma_dir = save_flow(tmp_path / "sigma", parts, sigma_twin(flow_t), time_convention="sigma")
    out_t = LATENT_PMRF.load(str(t_dir), CPU)(make_batch(), KNOBS)
    out_sigma = LATENT_PMRF.load(str(sigma_dir), CPU)(make_batch(), KNOBS)
    assert (out_t - out_sigma).abs().max() < 2e-5
    # and the conventions are really read: the t-trained flow run as if it were sigma-trained is different
    wrong = json.loads((t_dir / "config.json").read_text())
    (t_dir / "config.json").write_text(json.dumps({**wrong, "time_convention": "sigma"}))
    assert (LATENT_PMRF.load(str(t_dir), CPU)(make_batch(), KNOBS) - out_t).abs().max() > 1e-3


def _edit_config(folder: Path, key: str, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config[key] = {**config[key], **changes}
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.slow
def test_a_different_vae_is_refused_naming_both(tmp_path, parts):
    folder = save_flow(tmp_path / "ckpt", parts)
    _edit_config(folder, "vae", sha256="0" * 64)
    actual = sha256_of(parts["vae"] / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointError, match=rf"trained with VAE .*sha256 0000000000000000.* in use is .*sha256 {actual[:16]}"):
        LATENT_PMRF.load(str(folder), CPU)


def test_a_different_posterior_mean_is_refused(tmp_path, parts):
    folder = save_flow(tmp_path / "ckpt", parts)
    _edit_config(folder, "posterior_mean", sha256="f" * 64)
    with pytest.raises(CheckpointError, match=r"trained with posterior mean .*ffffffffffffffff"):
        LATENT_PMRF.load(str(folder), CPU)


@pytest.mark.slow
def test_recorded_relative_paths_are_inside_the_checkpoint(tmp_path, parts):
    """One folder can carry the flow, its VAE and its posterior mean (how the embedded default ships)."""
    reference = LATENT_PMRF.load(str(save_flow(tmp_path / "absolute", parts)), CPU)(make_batch(), KNOBS)
    folder = save_flow(tmp_path / "bundle", parts)
    shutil.copytree(parts["vae"], folder / "vae")
    shutil.copytree(parts["pm"], folder / "posterior_mean")
    _edit_config(folder, "vae", name="vae")
    _edit_config(folder, "posterior_mean", name="posterior_mean")
    assert torch.equal(LATENT_PMRF.load(str(folder), CPU)(make_batch(), KNOBS), reference)
    shutil.rmtree(folder / "vae")
    with pytest.raises(FileNotFoundError, match="bundle/vae"):
        LATENT_PMRF.load(str(folder), CPU)


@pytest.mark.slow
def test_bf16_runs_and_stays_close(tmp_path, parts):
    restorer = LATENT_PMRF.load(str(save_flow(tmp_path / "ckpt", parts)), CPU)
    fp32 = restorer(make_batch(), KNOBS)
    bf16 = restorer(make_batch(), {**KNOBS, "precision": "bf16"})
    assert bf16.dtype == torch.float32 and (bf16 - fp32).abs().mean() < 0.05


@pytest.mark.slow
def test_vae_recon_reconstructs_gt_else_lq(parts):
    restorer = VAE_RECON.load(str(parts["vae"]), CPU)
    vae = load_sim_vae(parts["vae"]).model
    paired, lq_only = make_batch(gt=True), make_batch()
    with torch.no_grad():
        for batch, source in ((paired, paired.gt), (lq_only, lq_only.lq)):
            expected = ((vae.decode(vae.encode(source * 2 - 1)[0]) + 1) / 2).clamp(0, 1)
            torch.testing.assert_close(restorer(batch, {"latent_sample": "mode"}), expected)
    drawn = restorer(paired, {"latent_sample": "sample"})
    assert torch.equal(drawn, restorer(make_batch(gt=True), {"latent_sample": "sample"}))
    assert not torch.equal(drawn, restorer(paired, {"latent_sample": "mode"}))


def test_vae_recon_refuses_sides_it_cannot_encode(parts):
    restorer = VAE_RECON.load(str(parts["vae"]), CPU)
    batch = RestoreBatch(lq=torch.rand(1, 3, 20, 24), image_ids=["odd"], seeds=[1])
    with pytest.raises(RestoreInputError, match="multiples of 8"):
        restorer(batch, {"latent_sample": "mode"})
