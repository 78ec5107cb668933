"""`lpmrf-bench weights list|fetch|verify` on a cache the test fills."""
from __future__ import annotations

import hashlib

from click.testing import CliRunner

from lpmrf_bench import weights as W
from lpmrf_bench.cli.main import main


def _cache_file(cache, wf: W.WeightFile, content: bytes):
    path = cache / wf.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_list_shows_every_published_file_with_its_state(tmp_path):
    from lpmrf_bench.models.pmrf_loading import DIFFACE_SWINIR

    _cache_file(tmp_path, DIFFACE_SWINIR, b"not really swinir")
    result = CliRunner().invoke(main, ["weights", "list", "--wide", "--weights-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if "/" in line.split()[0]}
    for expected in ("pmrf/model.safetensors", "difface/swinir_restoration512_L1.pth", "metrics/vgg16-397923af.pth",
                     "metrics/resnet18_110.pth", "sim-vae-c32/diffusion_pytorch_model.safetensors"):
        assert expected in lines
    assert " cached " in lines["difface/swinir_restoration512_L1.pth"]
    assert " missing " in lines["pmrf/model.safetensors"]
    assert "https://huggingface.co/ohayonguy/PMRF_blind_face_image_restoration/blob/main/model.safetensors" in result.output


def test_verify_records_then_checks_hashes(tmp_path):
    from lpmrf_bench.models.pmrf_loading import DIFFACE_SWINIR

    path = _cache_file(tmp_path, DIFFACE_SWINIR, b"first bytes")
    runner = CliRunner()
    first = runner.invoke(main, ["weights", "verify", "--weights-dir", str(tmp_path)])
    assert first.exit_code == 0 and hashlib.sha256(b"first bytes").hexdigest() in first.output
    path.write_bytes(b"changed bytes")
    second = runner.invoke(main, ["weights", "verify", "--weights-dir", str(tmp_path)])
    assert second.exit_code == 1 and "BAD" in second.output and "swinir_restoration512_L1.pth" in second.output


def test_fetch_offline_names_each_file_and_fails(tmp_path):
    result = CliRunner().invoke(main, ["weights", "fetch", "resnet18_110.pth", "vgg16-397923af.pth",
                                       "--weights-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.count("missing  weight file") == 2
    unknown = CliRunner().invoke(main, ["weights", "fetch", "no-such-file.pth"])
    assert unknown.exit_code == 2 and "no weight file named 'no-such-file.pth'" in unknown.output


def test_every_registered_file_is_in_the_published_catalog():
    """`weights list` reads `lpmrf_bench.published` without importing the models: no module may register elsewhere."""
    import importlib
    import pkgutil

    import lpmrf_bench
    import lpmrf_bench.published  # noqa: F401

    declared = set(W.catalog())
    for info in pkgutil.walk_packages(lpmrf_bench.__path__, "lpmrf_bench."):
        if not info.name.startswith(("lpmrf_bench.cli", "lpmrf_bench.__main__")):
            try:
                importlib.import_module(info.name)
            except ImportError:  # an optional backend (pyiqa) that is not installed registers nothing here
                continue
    assert set(W.catalog()) == declared


def test_builtin_schedule_choices_are_the_samplers():
    from lpmrf_bench.models.sampler import SCHEDULES
    from lpmrf_bench.restorers.builtin import SCHEDULES as KNOB_CHOICES

    assert KNOB_CHOICES == SCHEDULES
