"""Ground-truth features in the store and the `ground-truth` reference.

Random MobileNetV2 weights in the published layout (`fake_mobilenet`); values are checked against the extractor
applied here to the ground-truth images and against an explicit scipy Fréchet distance.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lpmrf_bench import store
from lpmrf_bench.engine import RunOptions, run
from lpmrf_bench.imageio import write_png
from lpmrf_bench.metrics import extractors
from lpmrf_bench.metrics.references import ReferenceMissingError, get_reference
from lpmrf_bench.set_scoring import ground_truth_reference
from test_set_metrics_run import fake_mobilenet, scipy_fd  # noqa: F401 (a fixture)

SPEC = extractors.MOBILENET.spec


@pytest.fixture()
def pairs(tmp_path, photo_pairs) -> tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """8 LQ/GT pairs of 32x32 crops of real photographs in the `lq/` + `gt/` layout."""
    lq, gt = {}, {}
    for name, degraded, clean in photo_pairs:
        for k in range(2):
            image_id = f"{name}{k}"
            lq[image_id] = np.ascontiguousarray(degraded[k * 32:(k + 1) * 32, 32:64])
            gt[image_id] = np.ascontiguousarray(clean[k * 32:(k + 1) * 32, 32:64])
            write_png(tmp_path / "pairs" / "lq" / f"{image_id}.png", lq[image_id])
            write_png(tmp_path / "pairs" / "gt" / f"{image_id}.png", gt[image_id])
    return str(tmp_path / "pairs"), lq, gt


def _options(out, data, **kw) -> RunOptions:
    base = dict(methods=["identity"], datasets=[data], metrics=["psnr", "fd_mobilenet"], out=str(out),
                progress=False, batch_size=3, set_reference="ground-truth")
    return RunOptions(**{**base, **kw})


def _extract_one_by_one(images: dict[str, np.ndarray], ids: list[str]) -> np.ndarray:
    extract = extractors.EXTRACTORS.get("mobilenet").build(torch.device("cpu"), None)
    return np.concatenate([extract(torch.from_numpy(images[i]).permute(2, 0, 1)[None].contiguous()).numpy()
                           for i in ids]).astype(np.float32)


def _ground_truth_rows(run_dir) -> pd.DataFrame:
    feats = store.load_features(run_dir, SPEC)
    return feats[feats["config_id"] == store.GROUND_TRUTH].sort_values("image_id").reset_index(drop=True)


@pytest.mark.slow
def test_ground_truth_features_reference_and_resume(tmp_path, fake_mobilenet, pairs):
    data, lq, gt = pairs
    out = tmp_path / "run"
    result = run(_options(out, data))
    ids = sorted(gt)

    rows = _ground_truth_rows(out)
    assert list(rows["image_id"]) == ids and set(rows["method"]) == {store.GROUND_TRUTH} and set(rows["sample"]) == {0}
    gt_feats = np.stack(rows["feature"].to_numpy())
    np.testing.assert_array_equal(gt_feats, _extract_one_by_one(gt, ids))

    # FD of the identity method (its outputs are the LQ images) against the run's own ground truth
    sets = pd.read_parquet(out / "sets.parquet")
    fd = sets[sets["metric"] == "fd_mobilenet"]
    assert list(fd["method"]) == ["identity"]  # the ground truth is a reference, never a scored configuration
    row = fd.iloc[0]
    want = scipy_fd(_extract_one_by_one(lq, ids).astype(np.float64), gt_feats.astype(np.float64))
    assert row["value"] == pytest.approx(want, rel=1e-6)
    assert row["reference"] == "ground-truth" and row["reference_n"] == 8 and row["n"] == 8
    assert not result.summary["config"].str.contains(store.GROUND_TRUTH).any()

    # resumed: nothing restored, no ground-truth feature extracted again, nothing duplicated
    parts = sorted((out / "features").glob("part-*.parquet"))
    again = run(_options(out, data))
    assert again.restored == 0 and sorted((out / "features").glob("part-*.parquet")) == parts
    raw = store.read_parts(parts)
    assert not raw.duplicated(store.FEATURE_KEY).any() and (raw["config_id"] == store.GROUND_TRUTH).sum() == 8

    # a lost ground-truth part: recomputed identically, the method is not run again
    for part in parts:
        if (store.read_parts([part])["config_id"] == store.GROUND_TRUTH).any():
            part.unlink()
    third = run(_options(out, data))
    assert third.restored == 0
    np.testing.assert_array_equal(np.stack(_ground_truth_rows(out)["feature"].to_numpy()), gt_feats)
    assert (pd.read_parquet(out / "sets.parquet").query("metric == 'fd_mobilenet'")["reference_hash"]
            == row["reference_hash"]).all()


def test_ground_truth_reference_hash_follows_the_feature_content():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"config_id": store.GROUND_TRUTH, "image_id": [f"{i:02d}" for i in range(5)],
                         "feature": list(rng.standard_normal((5, 4)).astype(np.float32))})
    ref = ground_truth_reference(rows, extractors.MOBILENET, "faces:all")
    assert ref.name == "ground-truth" and ref.n == 5
    assert ground_truth_reference(rows.iloc[::-1], extractors.MOBILENET, "faces:all").content_hash == ref.content_hash
    changed = rows.copy()
    changed.at[2, "feature"] = changed.at[2, "feature"] + np.float32(1e-3)
    assert ground_truth_reference(changed, extractors.MOBILENET, "faces:all").content_hash != ref.content_hash
    renamed = rows.assign(image_id=[f"x{i}" for i in range(5)])
    assert ground_truth_reference(renamed, extractors.MOBILENET, "faces:all").content_hash != ref.content_hash
    with pytest.raises(ReferenceMissingError, match="at least 2 images of faces:all; this run has 1"):
        ground_truth_reference(rows.iloc[:1], extractors.MOBILENET, "faces:all")
    with pytest.raises(ReferenceMissingError, match="ground truth stored in a run"):
        get_reference("ground-truth", extractors.MOBILENET, None)


@pytest.mark.slow
def test_lq_only_dataset_stores_no_ground_truth_and_skips_the_reference(tmp_path, fake_mobilenet, pairs):
    data, _, _ = pairs
    result = run(_options(tmp_path / "run", f"{data}/lq"))
    assert _ground_truth_rows(tmp_path / "run").empty
    reason = result.skipped_metrics[f"fd_mobilenet on {data}/lq:all"]
    assert "ground-truth" in reason and "this run has 0" in reason
