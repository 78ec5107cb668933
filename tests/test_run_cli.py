"""`lpmrf-bench run/restore/list` end to end on folders of real photographs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from conftest import write_pairs
from lpmrf_bench.cli.main import main
from lpmrf_bench.imageio import write_png
from lpmrf_bench.restorers import RESTORERS, RestorerSpec
from lpmrf_bench.store import load
from lpmrf_bench.weights import WeightFile, resolve

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture()
def paired(tmp_path, photo_pairs) -> Path:
    return write_pairs(tmp_path / "pairs", photo_pairs)


def invoke(*args: str):
    result = CliRunner().invoke(main, [*args, "--no-progress"] if args[0] == "run" else list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.mark.slow
def test_identity_metrics_equal_scikit_image(tmp_path, paired, photo_pairs):
    out = tmp_path / "run"
    result = invoke("run", "--methods", "identity", "--datasets", str(paired), "--out", str(out), "--batch-size", "3")
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(out / "metrics")
    for name, degraded, clean in photo_pairs:
        got = rows[rows.image_id == name].set_index("metric")["value"]
        assert abs(got["psnr"] - peak_signal_noise_ratio(clean, degraded, data_range=255)) < 1e-5
        ref = structural_similarity(clean, degraded, data_range=255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, channel_axis=2)
        assert abs(got["ssim"] - ref) < 1e-5
    assert "identity" in result.output and "psnr" in result.output


def _documented_columns(table: str) -> set[str]:
    """Column names in the README's schema table for `table` (first backticked cell of each row)."""
    text = README.read_text()
    section = text.split(f"#### `{table}")[1].split("\n#")[0]  # up to the next heading of any level
    return set(re.findall(r"^\| `([a-z_<>]+)`", section, flags=re.M)) - {"knob_<name>"}


def _undocumented(columns, table: str) -> set[str]:
    """Columns not in the README's table for `table`; `prefix_<name>` rows stand for a family of columns."""
    documented = _documented_columns(table)
    families = tuple(name.split("<")[0] for name in documented if "<" in name)
    return {c for c in columns if c not in documented and not (families and c.startswith(families))}


@pytest.mark.slow
def test_store_columns_match_readme_and_rerun_recomputes_nothing(tmp_path, paired):
    out = tmp_path / "run"
    args = ("run", "--methods", "identity", "--datasets", str(paired), "--out", str(out))
    assert invoke(*args).exit_code == 0
    parts = sorted((out / "metrics").glob("part-*.parquet"))
    metrics = pd.read_parquet(out / "metrics")
    assert set(metrics.columns) == _documented_columns("metrics")
    assert pd.read_parquet(out / "errors.parquet").empty  # a clean run still writes the (empty) table
    for table in ("images", "perf", "sets", "errors"):
        columns = set(pd.read_parquet(out / f"{table}.parquet").columns)
        assert not _undocumented(columns, table), table
        assert {c for c in _documented_columns(table) if "<" not in c} <= columns, table
    again = invoke(*args)
    assert again.exit_code == 0 and "(0 images restored" in again.output
    assert sorted((out / "metrics").glob("part-*.parquet")) == parts
    manifest = (out / "manifest.json").read_text()
    assert manifest.count('"argv"') == 2


def test_knob_columns_and_sweep_rows(tmp_path, paired, monkeypatch):
    monkeypatch.setitem(RESTORERS._targets, "test-scale", "test_run_cli:SCALE")
    out = tmp_path / "run"
    result = invoke("run", "--methods", "test-scale,identity", "--datasets", str(paired), "--out", str(out),
                    "--sweep", "gain=0.5,1.0", "--metrics", "psnr")
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(out / "metrics")
    assert str(rows["knob_gain"].dtype) == "float64"
    assert rows.groupby("method")["config_id"].nunique().to_dict() == {"identity": 1, "test-scale": 2}
    assert rows[rows.method == "identity"]["knob_gain"].isna().all()
    same = rows[(rows.method == "test-scale") & (rows.knob_gain == 1.0)].set_index("image_id")["value"]
    ident = rows[rows.method == "identity"].set_index("image_id")["value"]
    pd.testing.assert_series_equal(same.sort_index(), ident.sort_index(), check_names=False)


def _scale(weights, device):
    return lambda batch, knobs: batch.lq * knobs["gain"]


def _nan_for_coffee(weights, device):
    def restore(batch, knobs):
        out = batch.lq.clone()
        for i, image_id in enumerate(batch.image_ids):
            if image_id == "coffee":
                out[i, 0, 0, 0] = float("nan")
        return out
    return restore


def _needs_weights(weights, device):
    resolve(MISSING_FILE)
    raise AssertionError("unreachable: the file cannot exist in the test cache")


from lpmrf_bench.restorers import Knob  # noqa: E402  (the specs above are registered by the tests)

SCALE = RestorerSpec(name="test-scale", load=_scale, knobs=(Knob("gain", float, 1.0, pd=True),))
NAN = RestorerSpec(name="test-nan", load=_nan_for_coffee)
MISSING_FILE = WeightFile(path="test/never.pth", source="https://example.invalid/never.pth", description="a test net")
MISSING_CONFIG = WeightFile(path="test/never.json", source="https://example.invalid/never.json", description="its config")
NEEDS = RestorerSpec(name="test-needs-weights", load=_needs_weights,
                     weight_sets={"official": (MISSING_CONFIG, MISSING_FILE)}, default_weights="official")


@pytest.mark.slow
def test_nan_output_is_an_error_not_a_value(tmp_path, paired, monkeypatch):
    monkeypatch.setitem(RESTORERS._targets, "test-nan", "test_run_cli:NAN")
    out = tmp_path / "run"
    result = invoke("run", "--methods", "test-nan", "--datasets", str(paired), "--out", str(out))
    assert result.exit_code == 1
    assert "coffee" in result.output and "NaN" in result.output
    rows = pd.read_parquet(out / "metrics")
    assert "coffee" not in set(rows.image_id) and len(set(rows.image_id)) == 3
    errors = pd.read_parquet(out / "errors.parquet")
    assert errors.image_id.tolist() == ["coffee"]


def test_missing_weights_is_one_message_without_traceback(tmp_path, paired, monkeypatch):
    monkeypatch.setitem(RESTORERS._targets, "test-needs-weights", "test_run_cli:NEEDS")
    result = invoke("run", "--methods", "test-needs-weights", "--datasets", str(paired), "--out", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    for name in ("never.pth", "never.json"):  # every missing file named once, before anything runs
        assert result.output.count(f"'{name}'") == 1 and f"https://example.invalid/{name}" in result.output
    assert not (tmp_path / "r").exists()


def test_outputs_folder_scored_and_missing_files_named(tmp_path, paired, photo_pairs, caplog):
    restored = tmp_path / "restored"
    for name, _, clean in photo_pairs[:-1]:
        write_png(restored / f"{name}.png", clean)
    write_png(restored / "stranger.png", photo_pairs[0][2])
    out = tmp_path / "run"
    result = invoke("run", "--methods", f"outputs:mine={restored}", "--datasets", str(paired), "--out", str(out))
    assert result.exit_code == 1
    missing = photo_pairs[-1][0]
    assert f"no restored image named {missing}" in result.output
    rows = pd.read_parquet(out / "metrics")
    assert set(rows.method) == {"outputs:mine"}
    assert np.isinf(rows[rows.metric == "psnr"]["value"]).all()  # they are the ground truth itself
    assert rows[rows.metric == "ssim"]["value"].tolist() == pytest.approx([1.0] * 3)
    assert "matching no image of the set: stranger" in caplog.text


def test_size_mismatch_and_name_mismatch_are_reported(tmp_path, paired, photo_pairs):
    write_png(paired / "lq" / "astronaut.png", photo_pairs[0][1][:48, :48].copy())
    write_png(paired / "lq" / "orphan.png", photo_pairs[0][1])
    out = tmp_path / "run"
    result = invoke("run", "--methods", "identity", "--datasets", str(paired), "--out", str(out))
    assert result.exit_code == 1
    errors = pd.read_parquet(out / "errors.parquet").set_index("image_id")["reason"]
    assert "48x48 but ground truth is 96x96" in errors["astronaut"]
    assert "has no ground truth" in errors["orphan"]


def test_conflicting_invocation_refused(tmp_path, paired):
    out = tmp_path / "run"
    assert invoke("run", "--methods", "identity", "--datasets", str(paired), "--out", str(out)).exit_code == 0
    result = invoke("run", "--methods", "identity", "--datasets", str(paired), "--out", str(out), "--seed", "7")
    assert result.exit_code == 2 and "seed: directory has 0, this command asks for 7" in result.output


def test_unknown_method_and_knob_messages(tmp_path, paired):
    result = invoke("run", "--methods", "identty", "--datasets", str(paired), "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and "did you mean identity" in result.output
    result = invoke("run", "--methods", "identity", "--datasets", str(paired), "--set", "steps=5")
    assert result.exit_code == 2 and "no selected method has a knob 'steps'" in result.output


def test_restore_command_writes_pngs(tmp_path, paired, photo_pairs):
    result = invoke("restore", "--method", "identity", "--input", str(paired / "lq"), "--output", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    written = sorted(p.stem for p in (tmp_path / "o").glob("*.png"))
    assert written == sorted(p[0] for p in photo_pairs)


def test_list_commands(tmp_path, monkeypatch):
    for what in ("methods", "datasets", "metrics"):
        result = invoke("list", what)
        assert result.exit_code == 0, result.output
    monkeypatch.setenv("LPMRF_BENCH_DATA", str(tmp_path))
    rows = {line.split()[0]: line for line in invoke("list", "datasets", "--wide").output.splitlines()[2:]}
    assert " yes " in rows["synthetic-faces"]
    assert f"no: celeba-test: no celeba_512_validation_lq/ or celeba_512_validation/ under the data root {tmp_path}" \
        in rows["celeba-test"]
    assert "psnr/rgb-255-f64/pmrf-v1" in invoke("list", "metrics").output
    assert "identity" in invoke("list", "methods").output


def test_quantize_equals_torchvision_save_image(tmp_path):
    """PMRF writes its outputs with torchvision's save_image; the metrics must see the same 8-bit values."""
    from torchvision.utils import save_image

    from lpmrf_bench.engine import quantize
    from lpmrf_bench.imageio import read_image

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 64, 64, generator=gen) * 1.2 - 0.1  # includes values outside [0, 1]
    x[0, 0, 0, :8] = torch.arange(8) / 255 + 0.5 / 255  # near-ties
    save_image(x[0], tmp_path / "tv.png")
    expected = read_image(tmp_path / "tv.png")[0]
    np.testing.assert_array_equal(quantize(x)[0].permute(1, 2, 0).numpy(), expected)


def _max_abs_to_reference(batch):
    return (batch.out.double() - batch.reference.double()).abs().flatten(1).amax(dim=1)


from lpmrf_bench.metrics.base import MetricSpec, stateless  # noqa: E402

REF_METRIC = MetricSpec(name="testref", spec="testref/maxabs/test-v1", kind="reference-restoration",
                        higher_is_better=False, build=stateless(_max_abs_to_reference))


def test_reference_restoration_metric_gets_the_reference_output(tmp_path, paired, photo_pairs, monkeypatch):
    from lpmrf_bench.metrics import METRICS, PROTOCOLS

    monkeypatch.setitem(METRICS._targets, "testref/maxabs/test-v1", "test_run_cli:REF_METRIC")
    monkeypatch.setitem(PROTOCOLS["pmrf"], "testref", "testref/maxabs/test-v1")
    monkeypatch.setitem(RESTORERS._targets, "test-scale", "test_run_cli:SCALE")
    out = tmp_path / "run"
    result = invoke("run", "--methods", "test-scale", "--datasets", str(paired / "lq"), "--out", str(out),
                    "--set", "gain=0.5", "--reference", "identity", "--metrics", "testref")
    assert result.exit_code == 0, result.output
    rows = load(out).set_index("image_id")["value"]
    for name, degraded, _ in photo_pairs:
        lq = degraded.astype(np.float32)
        half = np.floor(lq / 255 * np.float32(0.5) * 255 + 0.5)  # the scaled output, saved as save_image does
        assert rows[name] == np.abs(half - lq).max()
    assert json.loads((out / "manifest.json").read_text())["reference"] == "identity (-)"
    result = invoke("run", "--methods", "test-scale", "--datasets", str(paired / "lq"), "--out", str(out),
                    "--set", "gain=0.5", "--reference", "test-scale", "--metrics", "testref")
    assert result.exit_code == 2 and "reference: directory has 'identity (-)'" in result.output
    result = invoke("run", "--methods", "identity", "--datasets", str(paired / "lq"), "--out", str(tmp_path / "r2"),
                    "--reference", "no-such-method", "--metrics", "testref")
    assert result.exit_code == 2 and "--reference: unknown method 'no-such-method'" in result.output


class _FixedSize:
    input_size = 48  # the loaded weights decide the size, not the spec

    def __call__(self, batch, knobs):
        return batch.lq


FIXED = RestorerSpec(name="test-fixed-size", load=lambda weights, device: _FixedSize(), input_size=512)


def test_inputs_of_a_size_the_loaded_restorer_cannot_take(tmp_path, paired, photo_pairs, monkeypatch):
    monkeypatch.setitem(RESTORERS._targets, "test-fixed-size", "test_run_cli:FIXED")
    name, degraded, clean = photo_pairs[0]
    write_png(paired / "lq" / f"{name}.png", np.ascontiguousarray(degraded[:48, :48]))
    write_png(paired / "gt" / f"{name}.png", np.ascontiguousarray(clean[:48, :48]))
    out = tmp_path / "run"
    result = invoke("run", "--methods", "test-fixed-size", "--datasets", str(paired), "--out", str(out))
    assert result.exit_code == 1
    errors = pd.read_parquet(out / "errors.parquet").set_index("image_id")["reason"]
    assert set(errors.index) == {p[0] for p in photo_pairs[1:]}
    assert all("needs 48x48 inputs, got 96x96" in reason for reason in errors)
    assert set(load(out).image_id) == {name}


def test_save_images_writes_the_scored_8bit_outputs(tmp_path, paired, photo_pairs):
    from lpmrf_bench.imageio import read_image

    out = tmp_path / "run"
    assert invoke("run", "--methods", "identity", "--datasets", str(paired), "--out", str(out),
                  "--save-images").exit_code == 0
    saved = sorted((out / "outputs").rglob("*.png"))
    assert len(saved) == len(photo_pairs)
    by_name = {p.stem: p for p in saved}
    for name, degraded, _ in photo_pairs:
        np.testing.assert_array_equal(read_image(by_name[name])[0], degraded)


@pytest.mark.slow
def test_two_folders_with_the_same_file_names_each_record_their_images(tmp_path, paired):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(paired, other)
    out = tmp_path / "run"
    assert invoke("run", "--methods", "identity", "--datasets", f"{paired},{other}", "--out", str(out)).exit_code == 0
    images = pd.read_parquet(out / "images.parquet")
    assert images.groupby("dataset")["image_id"].nunique().to_dict() == {str(paired.resolve()): 4, str(other.resolve()): 4}


def test_perf_splits_metric_time_per_metric_and_timings_view(tmp_path, paired, photo_pairs):
    out = tmp_path / "run"
    result = invoke("run", "--methods", "identity", "--datasets", str(paired), "--out", str(out),
                    "--metrics", "psnr,ssim,mse", "--timings")
    assert result.exit_code == 0, result.output
    perf = pd.read_parquet(out / "perf.parquet").iloc[0]
    split = {m: perf[f"metric_seconds_{m}"] for m in ("psnr", "ssim", "mse")}
    assert all(s > 0 for s in split.values())
    # the suite's throughput is the images over the sum of the per-metric seconds
    assert perf["metric_images_per_s"] == pytest.approx(len(photo_pairs) / sum(split.values()))
    lines = result.output.split("time per stage")[1].splitlines()
    stages = [line.split()[4] for line in lines[2:] if line.startswith("identity")]
    assert stages == ["restore", "psnr", "ssim", "mse"]
    shares = [int(line.split()[-1].rstrip("%")) for line in lines[2:] if line.startswith("identity")]
    assert 98 <= sum(shares) <= 102  # rounded percentages of one config's time
