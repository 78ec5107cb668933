"""Training settings: defaults < TOML file < --set, typed; typos and wrong types refused naming the key."""
from __future__ import annotations

import tomllib

import pytest
from click.testing import CliRunner

from lpmrf_bench.cli.main import main
from lpmrf_bench.train.config import ConfigError, PMRFConfig, VAEConfig, apply, resolve, toml_text


def test_pmrf_defaults_are_the_published_recipe():
    cfg = PMRFConfig()  # FACTS.md, PMRF training recipe
    assert (cfg.lr, cfg.weight_decay, cfg.betas, cfg.ema_decay, cfg.noise_std) == (5e-4, 1e-2, (0.9, 0.95), 0.9999, 0.1)


def test_file_then_set_override_in_order(tmp_path):
    file = tmp_path / "run.toml"
    file.write_text('lr = 0.001\nsteps = 7\nbetas = [0.8, 0.9]\narch = "hdit_tiny"\n')
    cfg = resolve(PMRFConfig(), file, {"steps": "9", "betas": "0.5,0.6"})
    assert (cfg.lr, cfg.steps, cfg.betas, cfg.arch) == (0.001, 9, (0.5, 0.6), "hdit_tiny")


def test_a_typo_is_refused_naming_the_key_and_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rte'.*") as info:
        apply(PMRFConfig(), {"learning_rte": "1"}, "--set")
    with pytest.raises(ConfigError, match=r"unknown key 'ema_decy'.*did you mean 'ema_decay'"):
        apply(PMRFConfig(), {"ema_decy": "0.9"}, "--set")
    assert "--set" in str(info.value)


@pytest.mark.parametrize("key, value, words", [
    ("steps", "ten", "steps takes an int"),
    ("steps", 2.5, "steps takes an int"),
    ("lr", "fast", "lr takes a float"),
    ("betas", "0.9", "betas takes 2 values"),
    ("compile", "maybe", "compile takes true or false"),
    ("arch", 3, "arch takes a string"),
])
def test_wrong_types_are_refused_naming_the_key(key, value, words):
    with pytest.raises(ConfigError, match=words):
        apply(PMRFConfig(), {key: value}, "file.toml")


def test_checks_name_the_key():
    with pytest.raises(ConfigError, match="ema_decay must be in"):
        resolve(PMRFConfig(), None, {"ema_decay": "1.5"})
    with pytest.raises(ConfigError, match="precision must be fp32 or bf16"):
        resolve(PMRFConfig(), None, {"precision": "fp16"})


def test_written_toml_reads_back_to_the_same_config():
    cfg = resolve(VAEConfig(), None, {"block_out_channels": "8,16,16", "kl_weight": "0.001"})
    text = toml_text(cfg, "header line")
    assert apply(VAEConfig(), tomllib.loads(text), "x") == cfg


def test_cli_typo_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(main, ["train", "pmrf", "--set", "stesp=3", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "unknown key 'stesp'" in result.output and "did you mean 'steps'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # nothing written for a refused command


def test_cli_unknown_recipe_exits_2():
    result = CliRunner().invoke(main, ["train", "gan"])
    assert result.exit_code == 2 and "gan" in result.output


def test_missing_posterior_mean_weights_fail_with_one_line(tmp_path):
    result = CliRunner().invoke(main, ["train", "pmrf", "--set", "arch=hdit_tiny", "--set", "val_every=0",
                                       "--out", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "swinir_restoration512_L1.pth" in result.output and "Traceback" not in result.output


def test_unknown_data_spec_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["train", "posterior-mean", "--data", "no-such-set:train", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no-such-set" in result.output


def test_unknown_validation_metric_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["train", "posterior-mean", "--set", "arch=swinir_tiny", "--set", "val_metrics=psnr,fid9",
                                       "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "val_metrics: unknown metric 'fid9'" in result.output
