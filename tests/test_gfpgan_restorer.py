"""The gfpgan restorer: published aligned-face inference, seeded decoder noise, weight sets, refusals."""
import json
import os
from pathlib import Path

import pytest
import torch

from _gfpgan_tiny import REFERENCE, one_thread, random_state, reference_inputs, tiny_net  # noqa: F401
from lpmrf_baselines.gfpgan import SPEC
from lpmrf_baselines.gfpgan.restorer import GFPGANRestorer
from click.testing import CliRunner
from conftest import photograph
from lpmrf_bench.cli.listing import method_rows
from lpmrf_bench.cli.main import main
from lpmrf_bench.imageio import write_png
from lpmrf_bench.restorers import RESTORERS
from lpmrf_bench.restorers.base import RestoreBatch, RestoreInputError, image_seed
from lpmrf_bench.store import load
from lpmrf_bench.weights import WeightsMissingError, sha256_of
from safetensors.torch import load_file

CPU = torch.device("cpu")
MANIFEST = json.loads((Path(__file__).parent / "manifests" / "gfpgan_v1_clean_512.json").read_text())
RELEASE = "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/"


@pytest.fixture(scope="module")
def restorer():
    return GFPGANRestorer(tiny_net(torch.float32))


def make_batch(ids, seed=0, sample=0, size=32):
    gens = [torch.Generator().manual_seed(sum(map(ord, i))) for i in ids]
    lq = torch.stack([torch.rand(3, size, size, generator=gen) for gen in gens])
    return RestoreBatch(lq=lq, image_ids=ids, seeds=[image_seed(seed, "synthetic", i, sample) for i in ids])


def test_spec_is_the_entry_point_with_only_a_precision_knob():
    assert RESTORERS.get("gfpgan") is SPEC
    assert [k.name for k in SPEC.knobs] == ["precision"] and SPEC.knob("precision").choices == ("fp32", "bf16")
    assert SPEC.stochastic and SPEC.input_size == 512 and SPEC.pd_knob is None
    assert SPEC.default_weights == "v1.4"
    assert {name: [wf.source for wf in files] for name, files in SPEC.weight_sets.items()} == {
        "v1.4": [RELEASE + "GFPGANv1.4.pth"], "v1.3": [RELEASE + "GFPGANv1.3.pth"]}
    row = next(r for r in method_rows() if r["method"] == "gfpgan")
    assert row["licence"].startswith("Apache-2.0")
    assert row["weights"] == "v1.4 (missing), v1.3 (missing), a path (--weights)"
    assert row["knobs (*PD)"] == "precision=fp32" and row["available"] == "weights missing: GFPGANv1.4.pth"


class ReferenceNoiseBatch(RestoreBatch):
    """Hands the restorer the reference script's noise tensors, by injection point."""

    def noise(self, shape, purpose, dtype=torch.float32):
        index = int(purpose.removeprefix("gfpgan-decoder-noise"))
        assert tuple(self.cache["noise"][index].shape[1:]) == tuple(shape)
        return self.cache["noise"][index]


def test_restores_as_the_published_inference_on_the_official_network():
    """[0,1] -> [-1,1] -> network -> clamp -> [0,1], against the official network's output (same weights, noise).

    The output is a sum of the ToRGB layers, each linear in its weight and bias: scaling those by 1.8 scales the
    official output by 1.8, so that the clamp is exercised too.
    """
    net = tiny_net(torch.float64)
    with torch.no_grad():
        for to_rgb in [net.stylegan_decoder.to_rgb1, *net.stylegan_decoder.to_rgbs]:
            to_rgb.modulated_conv.weight.mul_(1.8)
            to_rgb.bias.mul_(1.8)
    x, noise = reference_inputs(net.noise_shapes())
    batch = ReferenceNoiseBatch(lq=(x + 1) / 2, image_ids=["a", "b"], seeds=[0, 1], cache={"noise": noise})
    got = GFPGANRestorer(net)(batch, {"precision": "fp32"})
    official = load_file(str(REFERENCE / "gfpgan_clean.safetensors"))["output"] * 1.8
    want = (official.clamp(-1, 1) + 1) / 2
    assert 0.01 < (want == 0).double().mean() < 0.5  # some pixels clamped, most not
    torch.testing.assert_close(got, want.float(), rtol=0, atol=1e-6)


def test_seed_reproduces_bit_for_bit_and_samples_differ(restorer):
    knobs = SPEC.default_knobs()
    a = restorer(make_batch(["a", "b"]), knobs)
    assert torch.equal(a, restorer(make_batch(["a", "b"]), knobs))
    assert a.shape == (2, 3, 32, 32) and 0 <= a.min() and a.max() <= 1
    other_sample = restorer(make_batch(["a", "b"], sample=1), knobs)
    other_seed = restorer(make_batch(["a", "b"], seed=1), knobs)
    for other in (other_sample, other_seed):
        assert (other - a).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # every image changes with its noise


def test_output_does_not_depend_on_the_batch(restorer):
    together = restorer(make_batch(["a", "b", "c"]), SPEC.default_knobs())
    alone = restorer(make_batch(["b"]), SPEC.default_knobs())
    torch.testing.assert_close(together[1:2], alone, rtol=0, atol=1e-6)


def test_wrong_size_is_refused_per_image(restorer):
    with pytest.raises(RestoreInputError) as err:
        restorer(make_batch(["a", "b"], size=64), SPEC.default_knobs())
    assert set(err.value.reasons) == {"a", "b"}
    assert "32x32" in err.value.reasons["a"] and "got 64x64" in err.value.reasons["a"]


def test_bf16_is_close_to_fp32(restorer):
    fp32 = restorer(make_batch(["a", "b"]), {"precision": "fp32"})
    bf16 = restorer(make_batch(["a", "b"]), {"precision": "bf16"})
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)
    assert (bf16 - fp32).abs().mean() < 0.02


@pytest.mark.parametrize("weights, filename", [(None, "GFPGANv1.4.pth"), ("v1.4", "GFPGANv1.4.pth"),
                                               ("v1.3", "GFPGANv1.3.pth")])
def test_offline_missing_weights_name_the_file_and_source(weights, filename):
    with pytest.raises(WeightsMissingError) as err:
        SPEC.load(weights, CPU)
    message = str(err.value)
    assert filename in message and RELEASE + filename in message
    assert str(Path(os.environ["LPMRF_BENCH_WEIGHTS"]) / "gfpgan" / filename) in message


def test_unknown_weights_are_one_clear_error(tmp_path):
    with pytest.raises(WeightsMissingError, match=r"neither a weight set \(v1.4, v1.3\) nor an existing file"):
        SPEC.load(str(tmp_path / "nope.pth"), CPU)


def test_cli_without_weights_names_the_file_and_writes_nothing(tmp_path):
    photo = tmp_path / "faces"
    write_png(photo / "face.png", photograph("astronaut", 512))
    for extra, filename in (([], "GFPGANv1.4.pth"), (["--weights", "gfpgan=v1.3"], "GFPGANv1.3.pth")):
        result = CliRunner().invoke(main, ["run", "--methods", "gfpgan", "--datasets", str(photo), *extra,
                                           "--out", str(tmp_path / "run"), "--no-progress"])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"'{filename}'" in result.output and RELEASE + filename in result.output
        assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def release_file(tmp_path_factory):
    """A full-size file in the release format: `params_ema` with the manifest's keys, random non-zero values."""
    state = {k: v.float() for k, v in random_state({k: tuple(s) for k, s in MANIFEST["tensors"].items()}).items()}
    path = tmp_path_factory.mktemp("gfpgan") / "GFPGANv1.4.pth"
    torch.save({"params_ema": state}, path)
    return path, state


@pytest.mark.slow
def test_released_layout_files_load_strictly_for_both_versions(release_file):
    """Full-size release-format files load through the weight cache for v1.4 and v1.3, every tensor as stored."""
    path, state = release_file
    cache = Path(os.environ["LPMRF_BENCH_WEIGHTS"])
    (cache / "gfpgan").mkdir(parents=True)
    for version in ("v1.4", "v1.3"):
        os.link(path, cache / "gfpgan" / f"GFPGAN{version}.pth")
        loaded = SPEC.load(version, CPU)
        assert loaded.input_size == 512
        assert all(torch.equal(loaded.net.state_dict()[k], v) for k, v in state.items())
    hashes = json.loads((cache / "hashes.json").read_text())  # recorded on first use, checked afterwards
    assert hashes == {f"gfpgan/GFPGAN{v}.pth": sha256_of(path) for v in ("v1.4", "v1.3")}


@pytest.mark.slow
def test_run_restores_512_faces_with_samples_and_refuses_other_sizes(tmp_path, release_file):
    """`lpmrf-bench run` through the entry point: two samples of a 512 face differ; a 256 image is refused."""
    pairs = tmp_path / "pairs"
    for name, size in (("face512", 512), ("face256", 256)):
        write_png(pairs / "lq" / f"{name}.png", photograph("astronaut", size))
        write_png(pairs / "gt" / f"{name}.png", photograph("astronaut", size))
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["run", "--methods", "gfpgan", "--weights", f"gfpgan={release_file[0]}",
                                       "--datasets", str(pairs), "--metrics", "psnr", "--samples", "2",
                                       "--out", str(out), "--no-progress"])
    assert result.exit_code == 1, result.output  # the 256 image failed, and is named
    assert "face256" in result.output and "512x512" in result.output
    rows = load(out)
    assert set(rows.image_id) == {"face512"} and sorted(rows["sample"]) == [0, 1]
    assert rows.weights.unique().tolist() == [f"sha256:{sha256_of(release_file[0])[:16]}"]
    assert rows.value.nunique() == 2  # the decoder noise differs between samples
