"""What the CLI prints is what is so: availability, hashes, restore's work, this command's failures, inf PSNR."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from skimage.metrics import peak_signal_noise_ratio

from conftest import write_pairs
from lpmrf_bench.cli.main import main
from lpmrf_bench.imageio import read_image, write_png
from lpmrf_bench.restorers import RESTORERS, RestorerSpec


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture()
def paired(tmp_path, photo_pairs):
    return write_pairs(tmp_path / "pairs", photo_pairs)


def test_list_methods_says_which_weights_are_missing():
    out = invoke("list", "methods", "--wide").output
    rows = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert " yes " in rows["identity"] + " "
    assert "weights missing: swinir_restoration512_L1.pth" in rows["posterior-mean"]  # the test cache is empty
    assert "weights missing:" in rows["pmrf"] and "model.safetensors" in rows["pmrf"]
    # latent-pmrf's default weights are the embedded ones, inside the package; the others default to published files
    assert "embedded (here)" in rows["latent-pmrf"] and " yes " in rows["latent-pmrf"]
    assert not any(" yes" in rows[m] for m in ("pmrf", "posterior-mean", "vae-recon"))


@pytest.mark.slow
def test_missing_default_weights_point_to_the_set_that_is_here(tmp_path):
    """Offline, pmrf's published weights are absent and its embedded ones ship in the package: the error says so,
    and the command it suggests runs."""
    run = ["run", "--methods", "pmrf", "--datasets", "synthetic-faces:test", "--out", str(tmp_path / "r"),
           "--limit", "1", "--set", "steps=1", "--no-progress"]
    missing = invoke(*run)
    assert missing.exit_code == 1 and "weight file 'model.safetensors'" in missing.output
    hint = "pmrf: its weight set 'embedded' is on this machine: --weights pmrf=embedded in `run`"
    assert hint in missing.output
    assert invoke(*run, "--weights", "pmrf=embedded").exit_code == 0
    (tmp_path / "in").mkdir()
    no_other_set = invoke("restore", "--method", "gfpgan", "--input", str(tmp_path / "in"), "--output",
                          str(tmp_path / "o"))
    assert no_other_set.exit_code == 1 and "is on this machine" not in no_other_set.output


def test_list_metrics_says_which_weights_are_missing_and_tables_fit_100_columns():
    out = invoke("list", "metrics").output
    assert "weights missing: vgg16-397923af.pth" in out and "weights missing: resnet18_110.pth" in out
    for what in (["list", "methods"], ["list", "datasets"], ["list", "metrics"], ["weights", "list"]):
        lines = invoke(*what).output.splitlines()
        assert max(len(line) for line in lines if not line.startswith("cache: ")) <= 100, what


def test_weights_verify_tells_published_first_seen_and_empty_apart(tmp_path):
    from lpmrf_bench.models.pmrf_loading import DIFFACE_SWINIR

    empty = invoke("weights", "verify", "--weights-dir", str(tmp_path / "nothing"))
    assert empty.exit_code == 0 and "no downloaded catalog file is cached" in empty.output
    assert all(" embedded/" in line for line in empty.output.splitlines() if line.startswith("ok "))
    path = tmp_path / DIFFACE_SWINIR.path
    path.parent.mkdir(parents=True)
    path.write_bytes(b"some bytes")
    digest = hashlib.sha256(b"some bytes").hexdigest()
    first = invoke("weights", "verify", "--weights-dir", str(tmp_path)).output
    assert f"recorded  {DIFFACE_SWINIR.path}  {digest} (none published" in first
    assert not any(line.startswith("ok ") and " embedded/" not in line for line in first.splitlines())
    again = invoke("weights", "verify", "--weights-dir", str(tmp_path)).output
    assert f"same      {DIFFACE_SWINIR.path}  {digest}" in again


def test_manual_download_destination_is_the_cache_path(tmp_path, monkeypatch):
    from lpmrf_bench import weights as W

    monkeypatch.delenv("LPMRF_BENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    wf = W.WeightFile(path="metrics/net.pth", source="manual:https://drive.example/folder")
    with pytest.raises(W.WeightsMissingError) as info:
        W.resolve(wf, weights_dir=tmp_path)
    assert f"put it at:    {tmp_path / 'metrics' / 'net.pth'}" in str(info.value)


def test_skipped_metrics_name_source_and_destination(tmp_path, paired):
    result = invoke("run", "--methods", "identity", "--datasets", str(paired), "--out", str(tmp_path / "r"),
                    "--no-progress", "--limit", "1")
    assert result.exit_code == 0
    assert "skipped metric lpips:" in result.output
    assert "published at: https://download.pytorch.org/models/vgg16-397923af.pth" in result.output
    assert "put it at:" in result.output and "metrics/vgg16-397923af.pth" in result.output


def test_restore_says_which_inputs_reading_converted(tmp_path):
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    gray = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(gray).save(folder / "gray.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(folder / "rgb.png")
    result = invoke("restore", "--method", "identity", "--input", str(folder), "--output", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "1 converted on reading:\n  gray: lq: gray -> RGB\n" in result.output and "rgb:" not in result.output
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "gray.png")[0], np.repeat(gray[..., None], 3, -1))


def test_restore_reads_only_lq_refuses_its_input_and_existing_files(tmp_path, paired, photo_pairs):
    out = tmp_path / "restored"
    inside = invoke("restore", "--method", "identity", "--input", str(paired), "--output", str(paired / "out"))
    assert inside.exit_code == 2 and "overlaps --input" in inside.output and not (paired / "out").exists()
    done = invoke("restore", "--method", "identity", "--input", str(paired), "--output", str(out))
    assert done.exit_code == 0, done.output
    assert f"wrote {len(photo_pairs)} of {len(photo_pairs)} image(s) from {paired / 'lq'} to {out}" in done.output
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n, _, _ in photo_pairs)
    for name, degraded, _ in photo_pairs:  # identity writes the LQ image back, unchanged
        np.testing.assert_array_equal(read_image(out / f"{name}.png")[0], degraded)
    (out / f"{photo_pairs[0][0]}.png").write_bytes(b"mine")
    again = invoke("restore", "--method", "identity", "--input", str(paired), "--output", str(out))
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert (out / f"{photo_pairs[0][0]}.png").read_bytes() == b"mine"
    forced = invoke("restore", "--method", "identity", "--input", str(paired), "--output", str(out), "--overwrite")
    assert forced.exit_code == 0 and (out / f"{photo_pairs[0][0]}.png").read_bytes() != b"mine"


class _Fails:
    def __call__(self, batch, knobs):
        from lpmrf_bench.restorers import RestoreInputError

        raise RestoreInputError({i: "this test restorer fails every image" for i in batch.image_ids})


FAILS = RestorerSpec(name="test-fails", load=lambda weights, device: _Fails())


def test_exit_status_and_failures_describe_this_command(tmp_path, paired, monkeypatch):
    monkeypatch.setitem(RESTORERS._targets, "test-fails", "test_cli_truth:FAILS")
    out = str(tmp_path / "run")
    failed = invoke("run", "--methods", "test-fails", "--datasets", str(paired), "--out", out, "--no-progress")
    assert failed.exit_code == 1 and "image(s) failed in this command" in failed.output
    clean = invoke("run", "--methods", "identity", "--datasets", str(paired), "--out", out, "--no-progress")
    assert clean.exit_code == 0, clean.output
    assert "failed in this command" not in clean.output
    assert "4 failure(s) recorded by earlier commands remain" in clean.output
    assert len(pd.read_parquet(tmp_path / "run" / "errors.parquet")) == 4  # the record itself is kept


@pytest.mark.slow
def test_infinite_psnr_is_kept_and_shown_and_the_chart_says_what_it_leaves_out(tmp_path, paired, photo_pairs):
    """Outputs identical to the ground truth: PSNR +inf per image (as scikit-image), and the set value is the
    plain mean (PMRF protocol: per-image values averaged), inf as soon as one image is identical."""
    mixed = tmp_path / "mixed"
    for i, (name, degraded, clean) in enumerate(photo_pairs):
        write_png(mixed / f"{name}.png", clean if i == 0 else degraded)
    out = tmp_path / "run"
    result = invoke("run", "--methods", f"identity,outputs:mixed={mixed}", "--datasets", str(paired), "--out", str(out),
                    "--metrics", "psnr,ssim", "--no-progress")
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(out / "metrics")
    psnr = rows[(rows.method == "outputs:mixed") & (rows.metric == "psnr")].set_index("image_id")["value"]
    with np.errstate(divide="ignore"):  # scikit-image divides by a zero MSE for the identical pair
        expected = {n: peak_signal_noise_ratio(c, c if i == 0 else d, data_range=255)
                    for i, (n, d, c) in enumerate(photo_pairs)}
    assert psnr[photo_pairs[0][0]] == np.inf == expected[photo_pairs[0][0]]
    sets = pd.read_parquet(out / "sets.parquet").set_index(["method", "metric"])
    cell = sets.loc[("outputs:mixed", "psnr")]
    assert cell["value"] == np.mean(list(expected.values())) == np.inf
    assert cell["n"] == len(photo_pairs) and cell["n_inf"] == 1
    assert sets.loc[("identity", "psnr"), "n_inf"] == 0
    line = next(line for line in result.output.splitlines() if line.lstrip().startswith("outputs:mixed"))
    assert "inf [" in line and "(1 identical)" in line
    chart = invoke("plot", "pd-tradeoff", str(out), "--y", "ssim")
    assert chart.exit_code == 0, chart.output
    assert "left out outputs:mixed: psnr = inf cannot be placed on the axes" in chart.output


@pytest.mark.parametrize("method", ["pmrf", "latent-pmrf", "posterior-mean"])
def test_knob_values_are_checked_before_any_weight_lookup(tmp_path, paired, method):
    """The test cache is empty: a weights message here would mean the files were searched for first."""
    knob = "precision=fp64" if method == "posterior-mean" else "steps=0"
    result = invoke("run", "--methods", method, "--datasets", str(paired), "--set", knob, "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "knob" in result.output and "weight file" not in result.output
    assert not (tmp_path / "r").exists()


def test_weights_for_a_method_that_takes_none_or_a_missing_path(tmp_path, paired):
    none = invoke("run", "--methods", "identity", "--datasets", str(paired), "--weights", "identity=x.pth")
    assert none.exit_code == 2 and "takes no weights" in none.output
    missing = invoke("run", "--methods", "pmrf", "--datasets", str(paired), "--weights", f"pmrf={tmp_path / 'nope'}")
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
