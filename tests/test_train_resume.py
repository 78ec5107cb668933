"""Checkpoints: N steps + resume + N steps is bit-identical to 2N steps; a kill (also mid-save) loses at most the
steps since the last checkpoint and never leaves a corrupt one; conflicting reruns are refused."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from _train_tiny import QUIET, TINY, losses, one_thread, single_thread, tiny_train  # noqa: F401 (one_thread: autouse fixture)
from lpmrf_bench.cli.main import main
from lpmrf_bench.models.checkpoint import load_checkpoint, save_checkpoint
from lpmrf_bench.train.state import complete_checkpoints

ROOT = Path(__file__).resolve().parents[1]


def assert_same_state(a: Path, b: Path) -> None:
    """Every tensor of two checkpoint folders (model, EMA, optimiser, RNG) equal bit for bit."""
    ta, ca = load_checkpoint(a)
    tb, cb = load_checkpoint(b)
    assert sorted(ta) == sorted(tb)
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, different[:5]
    for key in ("step", "images_seen", "optimizer_param_groups", "scheduler", "data_position"):
        assert ca[key] == cb[key], key


@pytest.mark.slow
def test_resume_is_bit_identical(tmp_path):
    """PMRF recipe (noise, stratified times) with accumulation, clipping and warm-up: 2 + 2 steps == 4 steps."""
    pm = tiny_train("posterior-mean", tmp_path / "pm", "steps=1").export_dir
    sets = [f"posterior_mean={pm}", "grad_accum=2", "grad_clip=0.5", "warmup_steps=3", "checkpoint_every=2",
            "ema_decay=0.5"]
    tiny_train("pmrf", tmp_path / "straight", "steps=4", *sets)
    first = tiny_train("pmrf", tmp_path / "resumed", "steps=2", *sets)
    second = tiny_train("pmrf", tmp_path / "resumed", "steps=4", *sets)
    assert (first.resumed_from, second.resumed_from) == (None, 2)
    assert_same_state(tmp_path / "straight/checkpoints/step-00000004", tmp_path / "resumed/checkpoints/step-00000004")
    assert losses(tmp_path / "straight").equals(losses(tmp_path / "resumed"))  # logged once per step, same values
    ta, tb = (load_checkpoint(p / "export")[0] for p in (tmp_path / "straight", tmp_path / "resumed"))
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


@pytest.fixture(scope="module")
def two_and_three(tmp_path_factory):
    """A posterior-mean run checkpointed at steps 2 and 3, and a copy of its step-2 state to perturb."""
    root = tmp_path_factory.mktemp("perturb")
    with single_thread():
        tiny_train("posterior-mean", root / "a", "steps=2", "checkpoint_every=1", "keep_checkpoints=5")
        tiny_train("posterior-mean", root / "a", "steps=3", "checkpoint_every=1", "keep_checkpoints=5")
    return root


@pytest.mark.parametrize("pick", [
    lambda k: k.startswith("model."),
    lambda k: k.startswith("ema."),
    lambda k: k.endswith(".exp_avg"),
    lambda k: k.endswith(".exp_avg_sq"),
    lambda k: k.endswith(".step"),
], ids=["model", "ema", "exp_avg", "exp_avg_sq", "adam_step"])
@pytest.mark.slow
def test_every_kind_of_checkpoint_tensor_is_used_on_resume(two_and_three, tmp_path, pick):
    """Perturbing one restored tensor of each kind changes the weights one step later (the RNG state is not
    checked this way: no recipe draws from the global stream during a step)."""
    sets = ["checkpoint_every=1", "keep_checkpoints=5"]
    tiny_train("posterior-mean", tmp_path / "b", "steps=2", *sets)
    folder = tmp_path / "b/checkpoints/step-00000002"
    tensors, config = load_checkpoint(folder)
    key = next(k for k in tensors if pick(k) and tensors[k].is_floating_point())
    tensors[key] = tensors[key] * 1.5 + 0.01
    save_checkpoint(folder, tensors, {k: v for k, v in config.items() if k != "format"})
    tiny_train("posterior-mean", tmp_path / "b", "steps=3", *sets)
    ta = load_checkpoint(two_and_three / "a/checkpoints/step-00000003")[0]
    tb = load_checkpoint(tmp_path / "b/checkpoints/step-00000003")[0]
    assert any(not torch.equal(ta[k], tb[k]) for k in ta if k.startswith(("model.", "ema."))), key


KILL_MID_SAVE = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import lpmrf_bench.models.checkpoint as checkpoint
    from lpmrf_bench.train.run import train

    real = checkpoint.save_file
    calls = []

    def dying_save(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint: half a weights file, then SIGKILL
            Path(path).write_bytes(b"partial")
            os.kill(os.getpid(), signal.SIGKILL)
        real(tensors, path, metadata=metadata)

    checkpoint.save_file = dying_save
    train("posterior-mean", None, sys.argv[2:], None, Path(sys.argv[1]), False)
""")


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "LPMRF_BENCH_OFFLINE": "1"}


@pytest.mark.slow
def test_sigkill_during_checkpoint_writing_keeps_the_previous_one(tmp_path):
    sets = [*QUIET, *TINY["posterior-mean"], "checkpoint_every=1", "steps=3"]
    proc = subprocess.run([sys.executable, "-c", KILL_MID_SAVE, str(tmp_path / "run"), *sets], env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    folder = tmp_path / "run/checkpoints"
    assert [p.name for p in complete_checkpoints(tmp_path / "run")] == ["step-00000001"]
    assert any(p.name.endswith(".tmp") for p in folder.iterdir())  # the killed save's leftovers
    load_checkpoint(folder / "step-00000001")  # loadable
    resumed = tiny_train("posterior-mean", tmp_path / "run", "checkpoint_every=1", "steps=3")
    assert resumed.resumed_from == 1
    assert not any(p.name.endswith(".tmp") for p in folder.iterdir())
    tiny_train("posterior-mean", tmp_path / "straight", "checkpoint_every=1", "steps=3")
    assert_same_state(folder / "step-00000003", tmp_path / "straight/checkpoints/step-00000003")


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_only_uncheckpointed_steps(tmp_path):
    """Three SIGKILLs at seeded random moments while training and saving; every kept checkpoint loads, and the
    finished run equals an uninterrupted one."""
    rng = random.Random(13)
    sets = [*QUIET, *TINY["posterior-mean"], "checkpoint_every=1", "keep_checkpoints=2", "steps=40"]
    cmd = [sys.executable, "-m", "lpmrf_bench", "train", "posterior-mean", "--out", str(tmp_path / "run")]
    cmd += [a for s in sets for a in ("--set", s)]
    kills = 0
    while kills < 3:
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = len(complete_checkpoints(tmp_path / "run")) and complete_checkpoints(tmp_path / "run")[-1].name
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for a new checkpoint, then kill a random moment later
            found = complete_checkpoints(tmp_path / "run")
            if found and found[-1].name != before:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        for folder in complete_checkpoints(tmp_path / "run"):
            load_checkpoint(folder)
    assert kills == 3
    last = complete_checkpoints(tmp_path / "run")[-1]
    step = int(last.name.split("-")[1])
    finish = ["checkpoint_every=1", "keep_checkpoints=2", f"steps={step + 1}"]
    assert tiny_train("posterior-mean", tmp_path / "run", *finish).resumed_from == step
    tiny_train("posterior-mean", tmp_path / "straight", *finish)
    name = f"step-{step + 1:08d}"
    assert_same_state(tmp_path / "run/checkpoints" / name, tmp_path / "straight/checkpoints" / name)
    assert list(losses(tmp_path / "run").index) == list(range(1, step + 2))  # no lost or duplicated log rows


def test_rerun_with_other_settings_is_refused_and_steps_may_grow(tmp_path):
    out = str(tmp_path / "run")
    base = ["train", "posterior-mean", "--out", out] + [a for s in [*QUIET, *TINY["posterior-mean"]] for a in ("--set", s)]
    assert CliRunner().invoke(main, base + ["--set", "steps=1"]).exit_code == 0
    result = CliRunner().invoke(main, base + ["--set", "steps=2", "--set", "lr=0.1"])
    assert result.exit_code == 2 and "other values of lr" in result.output
    result = CliRunner().invoke(main, ["train", "posterior-mean", "--out", out, "--set", "steps=2"])
    assert result.exit_code == 0, result.output  # the stored config.toml is the base: only steps changed
    assert "resumed from step 1" in result.output


def test_a_run_from_before_a_setting_existed_resumes_as_its_default(tmp_path):
    """Flow runs begun before `time_sampling` existed store no such key; they resume, unless it is set otherwise."""
    posterior_mean = tiny_train("posterior-mean", tmp_path / "pm", "steps=1").export_dir
    out = tmp_path / "run"
    base = ["train", "pmrf", "--out", str(out)] + [a for s in [*QUIET, *TINY["pmrf"]] for a in ("--set", s)]
    first = CliRunner().invoke(main, base + ["--set", "steps=1", "--set", f"posterior_mean={posterior_mean}"])
    assert first.exit_code == 0, first.output
    stored = out / "config.toml"
    lines = stored.read_text().splitlines(keepends=True)
    stored.write_text("".join(line for line in lines if not line.startswith("time_sampling")))
    refused = CliRunner().invoke(main, ["train", "pmrf", "--out", str(out), "--set", "steps=2",
                                        "--set", "time_sampling=logit-normal"])
    assert refused.exit_code == 2 and "other values of time_sampling" in refused.output
    result = CliRunner().invoke(main, ["train", "pmrf", "--out", str(out), "--set", "steps=2"])
    assert result.exit_code == 0, result.output
    assert "resumed from step 1" in result.output


def test_resume_flag_needs_a_checkpoint(tmp_path):
    result = CliRunner().invoke(main, ["train", "posterior-mean", "--resume", "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no complete checkpoint" in result.output
