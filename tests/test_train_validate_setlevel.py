"""Training validation with the set-level `fd_mobilenet`: the logged value is the Fréchet distance of the
validation outputs' MobileNetV2 features to the `synthetic-faces:ref` features, checked with scipy's sqrtm.

MobileNetV2 has random weights in the published layout (as in test_set_metrics_run) and a 40-face reference.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from _train_tiny import one_thread, tiny_train  # noqa: F401  (one_thread: an autouse fixture)
from lpmrf_bench.metrics import extractors, references
from lpmrf_bench.metrics.base import MetricBatch
from lpmrf_bench.train.validate import build_metrics
from lpmrf_bench.weights import WeightsError
from test_set_metrics_run import fake_mobilenet, scipy_fd  # noqa: F401  (fake_mobilenet: a fixture)


@pytest.mark.slow
def test_fd_mobilenet_scores_all_batches_against_the_synthetic_reference(fake_mobilenet):
    [metric], notes = build_metrics(("fd_mobilenet",), torch.device("cpu"), "synthetic-faces", strict=True)
    assert notes == [] and metric.spec.endswith("/ref=synthetic-faces:ref")
    gen = torch.Generator().manual_seed(0)
    outs = [torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8, generator=gen) for _ in range(2)]
    batches = [MetricBatch(out=o, gt=o, lq=o) for o in outs]
    value = metric.score(batches)
    extract = extractors.MOBILENET.build(torch.device("cpu"), None)
    feats = torch.cat([extract(o) for o in outs]).numpy().astype(np.float64)
    ref = references.load_cached("synthetic-faces:ref", extractors.MOBILENET).features
    assert value.n == 10
    np.testing.assert_allclose(value.value, scipy_fd(feats, ref), rtol=1e-6)


def test_fid_without_its_weights_is_skipped_with_a_note_by_default_and_refused_when_named(fake_mobilenet):
    metrics, notes = build_metrics(("fid", "fd_mobilenet"), torch.device("cpu"), "synthetic-faces", strict=False)
    assert [m.name for m in metrics] == ["fd_mobilenet"]
    assert len(notes) == 1 and notes[0].startswith("validation skips fid:")
    assert "weights-inception-2015-12-05-6726825d.pth" in notes[0]
    with pytest.raises(WeightsError):
        build_metrics(("fid",), torch.device("cpu"), "synthetic-faces", strict=True)


def test_unknown_reference_is_skipped_with_a_note_unless_named(fake_mobilenet):
    metrics, notes = build_metrics(("fd_mobilenet", "psnr"), torch.device("cpu"), "my-faces", strict=False)
    assert [m.name for m in metrics] == ["psnr"]
    assert len(notes) == 1 and notes[0].startswith("validation skips fd_mobilenet: reference 'ffhq-512'")


@pytest.mark.slow
def test_training_logs_fd_mobilenet_per_validation(fake_mobilenet, tmp_path):
    result = tiny_train("posterior-mean", tmp_path / "pm", "val_every=1", "steps=2", "val_images=6",
                        "val_batch_size=4", "val_metrics=fd_mobilenet,psnr")
    frame = pd.read_parquet(result.run_dir / "convergence.parquet")
    fd = frame[frame["metric"] == "fd_mobilenet"]
    assert list(fd["step"]) == [1, 2] and (fd["n"] == 6).all() and np.isfinite(fd["value"]).all()
    assert fd["spec"].str.startswith("fd_mobilenet/").all()
