"""Training: loss falls for every recipe, the exports restore through `run --weights` with the values validation
logged, a toy flow learns the straight path, bf16 runs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.special
import scipy.stats
import torch
from click.testing import CliRunner

from _train_tiny import TINY, losses, one_thread, single_thread, tiny_train  # noqa: F401 (one_thread: autouse fixture)
from lpmrf_bench import store
from lpmrf_bench.cli.main import main
from lpmrf_bench.convergence import load_curve
from lpmrf_bench.models.archs import build_arch
from lpmrf_bench.models.sampler import (TIME_SAMPLINGS, flow_matching_loss, logit_normal, sample_euler,
                                        stratified_uniform, time_grid)
from lpmrf_bench.train import config, recipes
from lpmrf_bench.train.loop import update_ema
from lpmrf_bench.train.run import TrainError

VALIDATE = ["val_every=2", "val_images=4", "val_batch_size=2", "ema_decay=0.5", "steps=2"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Each recipe trained for 2 steps with validation; the flows on the posterior mean and VAE trained here."""
    root = tmp_path_factory.mktemp("chain")
    with single_thread():
        pm = tiny_train("posterior-mean", root / "pm", *VALIDATE)
        vae = tiny_train("vae", root / "vae", *VALIDATE)
        deps = [f"posterior_mean={pm.export_dir}"]
        pmrf = tiny_train("pmrf", root / "pmrf", *VALIDATE, *deps)
        latent = tiny_train("latent-pmrf", root / "latent", *VALIDATE, *deps, f"vae={vae.export_dir}")
    return {"posterior-mean": pm, "vae-recon": vae, "pmrf": pmrf, "latent-pmrf": latent, "root": root}


@pytest.mark.slow
def test_exports_restore_through_run_with_the_validated_values(chain):
    methods = ["posterior-mean", "vae-recon", "pmrf", "latent-pmrf"]
    args = ["run", "--methods", ",".join(methods), "--datasets", "synthetic-faces:val", "--limit", "4",
            "--metrics", "psnr", "--set", "steps=2", "--out", str(chain["root"] / "run"), "--no-progress"]
    for m in methods:
        args += ["--weights", f"{m}={chain[m].export_dir}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    frame = store.load(chain["root"] / "run")
    for m in methods:
        logged = pd.read_parquet(chain[m].run_dir / "convergence.parquet")
        last = logged[(logged["metric"] == "psnr") & (logged["step"] == 2)].iloc[0]
        ours = frame[(frame["method"] == m) & (frame["metric"] == "psnr")]
        assert len(ours) == last["n"] == 4
        assert ours["spec"].iloc[0] == last["spec"]
        assert ours["value"].mean() == pytest.approx(last["value"], rel=1e-12), m


@pytest.mark.slow
def test_pmrf_export_records_the_posterior_mean_as_named(chain, monkeypatch):
    """Provenance only (the posterior mean's weights are inside the checkpoint): no path of the training machine."""
    monkeypatch.chdir(chain["root"])
    relative = tiny_train("pmrf", Path("pmrf-relative"), "steps=1", "posterior_mean=pm/export")
    absolute = json.loads((chain["pmrf"].export_dir / "config.json").read_text())["depends_on"]
    assert json.loads((relative.export_dir / "config.json").read_text())["depends_on"] == [
        {"name": "pm/export", "sha256": absolute[0]["sha256"]}]


@pytest.mark.slow
def test_convergence_log_has_the_design_schema_and_a_grid_per_validation(chain):
    run_dir = chain["pmrf"].run_dir
    frame = pd.read_parquet(run_dir / "convergence.parquet")
    assert list(frame.columns) == ["run_id", "step", "wall_s", "images_seen", "metric", "spec", "value", "n"]
    assert sorted(frame["step"].unique()) == [2]
    assert (frame["images_seen"] == 2 * 4).all() and (frame["wall_s"] > 0).all()
    assert (run_dir / "samples" / "step-00000002.png").is_file()
    assert list(load_curve(run_dir, "psnr")["step"]) == [2]  # what `speedup` reads


@pytest.mark.slow
@pytest.mark.parametrize("recipe, extra, ratio", [
    ("posterior-mean", [], 0.6),
    ("vae", [], 0.8),
    ("pmrf", ["posterior_mean={pm}"], 0.8),
    ("latent-pmrf", ["posterior_mean={pm}", "vae={vae}"], 0.97),
])
def test_loss_falls(chain, tmp_path, recipe, extra, ratio):
    """Mean loss of the last quarter of 32 steps vs the first quarter, same seeded data stream."""
    deps = {"pm": chain["posterior-mean"].export_dir, "vae": chain["vae-recon"].export_dir}
    tiny_train(recipe, tmp_path / "r", "steps=32", "lr=2e-3", *(e.format(**deps) for e in extra))
    loss = losses(tmp_path / "r").to_numpy()
    assert loss[-8:].mean() < ratio * loss[:8].mean(), loss


@pytest.mark.slow
def test_toy_flow_learns_the_straight_path():
    """Two points: source a, target b. Flow matching with stratified times should learn v = b - a everywhere, so one
    Euler step from a lands on b (checked against the closed form, not the training loss)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 16, 16, generator=gen), torch.rand(1, 3, 16, 16, generator=gen)
    net = build_arch("hdit_tiny")
    ema = build_arch("hdit_tiny")
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, betas=(0.9, 0.95))
    batch = 8
    for step in range(150):
        times = stratified_uniform(batch, torch.Generator().manual_seed(step))
        loss = flow_matching_loss(net, b.expand(batch, -1, -1, -1), a.expand(batch, -1, -1, -1), times, "t")
        opt.zero_grad()
        loss.backward()
        opt.step()
        update_ema(ema, net, 0.9)
    with torch.no_grad():
        one_step = sample_euler(ema, a, time_grid(1, "t"))
    start_gap = (a - b).abs().mean().item()
    assert (one_step - b).abs().mean().item() < 0.1 * start_gap


def test_logit_normal_times_are_the_sigmoid_of_normal_quantiles(tmp_path):
    u = torch.tensor([1e-6, 0.01, 0.25, 0.5, 0.8, 0.999999], dtype=torch.float32)
    expected = scipy.special.expit(scipy.stats.norm.ppf(u.double().numpy()))
    np.testing.assert_allclose(logit_normal(u).numpy(), expected, rtol=1e-6, atol=1e-7)
    assert logit_normal(u).dtype == torch.float32
    assert set(TIME_SAMPLINGS) == set(config.TIME_SAMPLINGS)  # the torch-free list of names matches
    with pytest.raises(TrainError, match="time_sampling must be one of uniform, logit-normal, got 'beta'"):
        tiny_train("pmrf", tmp_path / "r", "time_sampling=beta")
    for recipe in ("posterior-mean", "vae"):  # their losses take no times, so the key is not theirs
        with pytest.raises(TrainError, match="unknown key 'time_sampling'"):
            tiny_train(recipe, tmp_path / recipe, "time_sampling=uniform")


@pytest.mark.slow
def test_pmrf_trains_on_logit_normal_times_of_the_same_strata(chain, tmp_path, monkeypatch):
    """The same run with each time sampling: the flow sees sigmoid(norm.ppf(u)) of the uniform run's times u."""
    seen: dict[str, list[torch.Tensor]] = {"uniform": [], "logit-normal": []}
    for sampling, times in seen.items():
        def recording(net, data, source, t, convention, times=times):
            times.append(t.clone())
            return flow_matching_loss(net, data, source, t, convention)

        monkeypatch.setattr(recipes, "flow_matching_loss", recording)
        tiny_train("pmrf", tmp_path / sampling, "steps=2", f"posterior_mean={chain['posterior-mean'].export_dir}",
                   f"time_sampling={sampling}")
    u, t = torch.cat(seen["uniform"]).double().numpy(), torch.cat(seen["logit-normal"]).double().numpy()
    assert len(u) == 8 and not np.allclose(u, t)
    np.testing.assert_allclose(t, scipy.special.expit(scipy.stats.norm.ppf(u)), rtol=1e-6, atol=1e-7)
    specs = {s: pd.read_parquet(tmp_path / s / "loss.parquet")["loss_spec"].unique().tolist() for s in seen}
    assert specs == {"uniform": ["velocity-mse/t/stratified/noise0.1"],
                     "logit-normal": ["velocity-mse/t/stratified-logit-normal/noise0.1"]}


def test_ema_update_is_the_exponential_average():
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    expected = {k: 0.9 * ema.state_dict()[k] + 0.1 * v for k, v in model.state_dict().items()}
    update_ema(ema, model, 0.9)
    for k, v in ema.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=1e-7)


def test_bf16_training_runs_and_logs_finite_losses(tmp_path):
    result = tiny_train("posterior-mean", tmp_path / "r", "steps=2", "precision=bf16")
    assert result.progress.step == 2
    assert losses(tmp_path / "r").notna().all() and torch.isfinite(torch.tensor(losses(tmp_path / "r").to_numpy())).all()


def test_vae_kl_term_is_the_gaussian_kl():
    from torch.distributions import Normal, kl_divergence

    from lpmrf_bench.train.recipes import kl_to_standard_normal
    gen = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(2, 4, 3, 3, generator=gen), torch.randn(2, 4, 3, 3, generator=gen)
    expected = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(dim=(1, 2, 3)).mean()
    torch.testing.assert_close(kl_to_standard_normal(mean, logvar), expected)


def test_vae_without_lpips_weights_says_the_term_is_dropped(tmp_path):
    args = ["train", "vae", "--out", str(tmp_path / "r"), "--set", "steps=1", "--set", "batch_size=2",
            "--set", "val_every=1", "--set", "val_images=2", "--set", "progress=false"]
    args += [a for s in TINY["vae"] if not s.startswith("lpips") for a in ("--set", s)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "note: the LPIPS term is dropped" in result.output and "validation skips lpips" in result.output
    assert set(losses(tmp_path / "r").index) == {1}
    assert set(pd.read_parquet(tmp_path / "r" / "loss.parquet").columns) >= {"l1", "kl"}
    assert "lpips" not in pd.read_parquet(tmp_path / "r" / "loss.parquet").columns


def test_posterior_mean_export_loads_every_tensor(tmp_path):
    """Our posterior-mean folder round-trips, and every float tensor of the loaded network matters."""
    from _pmrf_tiny import perturbed_outputs_differ, randomize
    from lpmrf_bench.models.pmrf_loading import load_posterior_mean, save_posterior_mean

    model = randomize(build_arch("swinir_tiny"), 3).eval()
    save_posterior_mean(tmp_path / "pm", model, "swinir_tiny", 64)
    loaded, size = load_posterior_mean(str(tmp_path / "pm"))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert size == 64 and torch.equal(loaded(x), model(x))
        assert perturbed_outputs_differ(loaded, lambda m: m(x)) == []


@pytest.mark.slow
def test_speedup_reads_training_runs_as_they_are(chain):
    result = CliRunner().invoke(main, ["speedup", str(chain["pmrf"].run_dir), str(chain["latent-pmrf"].run_dir),
                                       "--metric", "psnr", "--higher-is-better"])
    assert result.exit_code == 0, result.output
    logged = pd.read_parquet(chain["latent-pmrf"].run_dir / "convergence.parquet")
    assert f"psnr {logged['value'].iloc[0]:.4g} at step 2" in result.output
