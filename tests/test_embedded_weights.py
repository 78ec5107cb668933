"""The shipped `embedded` weight set: pinned hashes, loading, restoring, and the default run built on it.

These check the files and the plumbing, not how well the networks restore (README "Embedded models" has the
measured quality).
"""
from __future__ import annotations

import hashlib
import json
import shutil

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from lpmrf_bench import weights as W
from lpmrf_bench.cli.main import main
from lpmrf_bench.data import open_dataset
from lpmrf_bench.embedded_weights import EMBEDDED, METHODS, package_folder
from lpmrf_bench.plan import embedded_methods
from lpmrf_bench.restorers import RestoreBatch, get_restorer, image_seed
from test_set_metrics_run import fake_mobilenet  # noqa: F401  (a fixture)

MAX_BYTES = 25 * 2**20


def test_every_method_ships_files_whose_sha256_is_pinned():
    manifest = json.loads((package_folder() / "manifest.json").read_text())
    assert sorted(manifest) == sorted(METHODS) == sorted(EMBEDDED)
    for method, files in manifest.items():
        for rel, digest in files.items():
            assert hashlib.sha256((package_folder() / method / rel).read_bytes()).hexdigest() == digest
        assert any(rel.endswith(".safetensors") for rel in files)
        assert (package_folder() / method / "convergence.parquet").is_file()
    assert sum(p.stat().st_size for p in package_folder().rglob("*") if p.is_file()) < MAX_BYTES


def test_weights_verify_checks_the_embedded_files():
    result = CliRunner().invoke(main, ["weights", "verify"])
    embedded = [line for line in result.output.splitlines() if " embedded/" in line]
    assert len(embedded) == sum(len(files) for files in EMBEDDED.values())
    assert all(line.startswith("ok ") for line in embedded)


def test_a_changed_embedded_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "embedded"
    shutil.copytree(package_folder(), copy)
    weights_file = next((copy / "pmrf").rglob("*.safetensors"))
    data = bytearray(weights_file.read_bytes())
    data[-1] ^= 1
    weights_file.write_bytes(bytes(data))
    monkeypatch.setattr(W, "_embedded_path", lambda rel: copy / rel)
    monkeypatch.setattr("lpmrf_bench.embedded_weights.package_folder", lambda: copy)
    with pytest.raises(W.WeightsHashError, match="pmrf"):
        get_restorer("pmrf").load("embedded", torch.device("cpu"))
    with pytest.raises(W.WeightsHashError):
        embedded_methods()


@pytest.mark.parametrize("method, knobs", [
    ("posterior-mean", {}),
    ("pmrf", {"steps": 2}),
    ("latent-pmrf", {"steps": 2}),
    ("vae-recon", {}),
])
def test_embedded_weights_restore_64px_faces(method, knobs):
    spec = get_restorer(method)
    restorer = spec.load("embedded", torch.device("cpu"))
    data = open_dataset("synthetic-faces:test")
    samples = [data.load(i) for i in list(data.image_ids())[:2]]
    lq = torch.stack([torch.from_numpy(s.lq).permute(2, 0, 1) for s in samples]).float() / 255
    gt = torch.stack([torch.from_numpy(s.gt).permute(2, 0, 1) for s in samples]).float() / 255
    ids = [s.image_id for s in samples]
    batch = RestoreBatch(lq=lq, image_ids=ids, gt=gt, seeds=[image_seed(0, data.name, i, 0) for i in ids])
    with torch.inference_mode():
        out = restorer(batch, {**spec.default_knobs(), **knobs})
    assert out.shape == (2, 3, 64, 64) and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, lq)  # it did something to the input


def test_latent_pmrf_defaults_to_the_embedded_set_and_the_default_run_lists_its_methods():
    assert get_restorer("latent-pmrf").default_weights == "embedded"
    assert embedded_methods() == ["identity", "posterior-mean", "pmrf", "latent-pmrf"]


@pytest.mark.slow
def test_default_run_sweeps_steps_on_the_embedded_weights(fake_mobilenet, tmp_path):
    result = CliRunner().invoke(main, ["run", "--limit", "3", "--sweep", "steps=1,2", "--no-progress",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for method, count in (("identity", 1), ("posterior-mean", 1), ("pmrf", 2), ("latent-pmrf", 2)):
        rows = [line for line in lines if line.split()[:1] == [method]]
        assert len(rows) == count, result.output
    sets = pd.read_parquet(tmp_path / "run" / "sets.parquet")
    assert set(sets["metric"]) == {"psnr", "ssim", "fd_mobilenet", "kd_mobilenet"}
    assert set(sets.loc[sets["method"] != "identity", "weights"]) == {"embedded"}


def test_methods_alone_run_on_the_embedded_default_and_datasets_alone_are_refused(fake_mobilenet, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["run", "--methods", "identity,posterior-mean", "--limit", "3", "--metrics", "psnr",
                                  "--no-progress", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert ("no --datasets: scoring synthetic-faces:test (the embedded default) with the embedded weights of "
            "posterior-mean\n") in result.stderr
    sets = pd.read_parquet(tmp_path / "run" / "sets.parquet")
    assert set(sets["dataset"]) == {"synthetic-faces"} and set(sets["split"]) == {"test"}
    assert sets.set_index("method")["weights"].to_dict() == {"identity": "-", "posterior-mean": "embedded"}
    own = runner.invoke(main, ["run", "--methods", "posterior-mean", "--weights", "posterior-mean=/no/such/file",
                               "--out", str(tmp_path / "own")])
    assert own.exit_code != 0 and "(the embedded default)\n" in own.stderr and "/no/such/file" in own.output
    alone = runner.invoke(main, ["run", "--datasets", "synthetic-faces:test", "--out", str(tmp_path / "other")])
    assert alone.exit_code == 2 and "--datasets needs --methods" in alone.output
    assert not (tmp_path / "other").exists()
