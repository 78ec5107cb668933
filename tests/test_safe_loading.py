"""The loading policy: a pickle that runs code is never executed unless its hash is pinned or the user trusts it.

The malicious file creates a folder when unpickled in full; every load path is fed it and the folder must not
appear. The positive controls (trusted, pinned) show that the same file does run code when fully unpickled, so
the negative checks can fail.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from lpmrf_bench import weights as W
from lpmrf_bench.cli.main import main
from lpmrf_bench.models.state_dicts import read_torch_file


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.fixture()
def evil(tmp_path) -> tuple[Path, Path]:
    """(a checkpoint whose full unpickling creates `marker`, marker)."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hyper_parameters": _RunsCode(marker)}, path)
    return path, marker


def test_read_refuses_and_names_the_flag(evil):
    path, marker = evil
    with pytest.raises(W.UnsafePickleError, match="--trust-pickle") as info:
        read_torch_file(path)
    assert "os.mkdir" in str(info.value) or "mkdir" in str(info.value)
    assert not marker.exists()


@pytest.mark.slow
def test_every_loader_refuses_it(evil, tmp_path):
    from lpmrf_bench.metrics.lpips import build_lpips
    from lpmrf_bench.models.arcface import load_arcface
    from lpmrf_bench.models.fan import load_fan
    from lpmrf_bench.models.pmrf_loading import load_pmrf, load_posterior_mean

    path, marker = evil
    ckpt = tmp_path / "evil.ckpt"
    ckpt.write_bytes(path.read_bytes())
    loaders = [lambda: load_arcface(path), lambda: load_fan(path), lambda: load_posterior_mean(str(path)),
               lambda: load_pmrf(str(ckpt)), lambda: build_lpips("vgg", torch.device("cpu"), path=str(path))]
    for load in loaders:
        with pytest.raises(W.WeightsError):
            load()
        assert not marker.exists()


def test_cli_refuses_it_in_one_line_and_runs_it_only_when_trusted(evil, tmp_path, photo_pairs):
    from lpmrf_bench.imageio import write_png

    path, marker = evil
    ckpt = path.rename(path.with_suffix(".ckpt"))  # a Lightning checkpoint is read before any network is built
    name, degraded, _ = photo_pairs[0]
    write_png(tmp_path / "in" / f"{name}.png", degraded)
    args = ["restore", "--method", "pmrf", "--weights", str(ckpt), "--input", str(tmp_path / "in"),
            "--output", str(tmp_path / "out")]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert "can run arbitrary code" in refused.output and "Traceback" not in refused.output
    assert not marker.exists() and not (tmp_path / "out").exists()
    trusted = CliRunner().invoke(main, [*args, "--trust-pickle", str(ckpt)])
    assert marker.exists(), trusted.output  # the user's explicit trust is the only way the code ran
    assert trusted.exit_code != 0  # and the file is still no SwinIR checkpoint


def test_trusted_and_pinned_files_are_read_in_full(evil, monkeypatch):
    path, marker = evil
    monkeypatch.setenv(W.TRUST_ENV, str(path))
    read_torch_file(path)
    assert marker.exists()
    marker.rmdir()
    monkeypatch.delenv(W.TRUST_ENV)
    pinned = W.WeightFile(path="test/evil.pth", source="https://example.org/evil.pth", sha256=W.sha256_of(path))
    monkeypatch.setitem(W._REGISTRY, pinned.path, pinned)
    read_torch_file(path)
    assert marker.exists()


def test_files_that_are_no_checkpoint_say_so(tmp_path):
    junk = tmp_path / "page.pth"
    junk.write_bytes(b"<html>Sign in to continue</html>")
    with pytest.raises(W.UnreadableWeightsError, match="not a readable PyTorch checkpoint") as info:
        read_torch_file(junk)
    assert "--trust-pickle" not in str(info.value)
    plain = tmp_path / "plain.pth"
    torch.save({"w": torch.arange(3.0)}, plain)
    assert torch.equal(read_torch_file(plain)["w"], torch.arange(3.0))


def test_junk_metric_weights_skip_that_metric_only(tmp_path, photo_pairs, monkeypatch):
    """A corrupt file where ArcFace's weights belong skips `deg` with the reason; the run completes."""
    from conftest import write_pairs
    from lpmrf_bench.metrics.face import ARCFACE_R18

    cache = tmp_path / "cache"
    (cache / ARCFACE_R18.path).parent.mkdir(parents=True)
    (cache / ARCFACE_R18.path).write_bytes(b"<html>quota exceeded</html>")
    monkeypatch.setenv(W.CACHE_ENV, str(cache))
    write_pairs(tmp_path / "pairs", photo_pairs[:2])
    result = CliRunner().invoke(main, ["run", "--methods", "identity", "--datasets", str(tmp_path / "pairs"),
                                       "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped metric deg:")]
    assert len(skipped) == 1 and "not a readable PyTorch checkpoint" in skipped[0]
    assert "psnr" in result.output
