"""pyiqa no-reference metrics: unavailable with the install hint without pyiqa; the adapter's input
conversion and seeding checked against a stand-in pyiqa module (no real pyiqa is installed here)."""
from __future__ import annotations

import importlib.machinery
import sys
import types

import numpy as np
import pytest
import torch

from lpmrf_bench.metrics.base import MetricBatch
from lpmrf_bench.registry import Registry, UnavailableError
from lpmrf_bench.weights import WeightsMissingError

CPU = torch.device("cpu")


def test_unavailable_without_pyiqa(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyiqa", None)  # import pyiqa -> ImportError, find_spec -> None
    reg = Registry("metric")
    reg.add("musiq/koniq-rgb01/pyiqa-v1", "lpmrf_bench.metrics.pyiqa_nr:MUSIQ")
    [(name, spec, err)] = list(reg.available())
    assert err is None  # the module imports without pyiqa
    from lpmrf_bench.metrics.base import unavailable_reason
    from lpmrf_bench.metrics.pyiqa_nr import CLIPIQA, MANIQA, MUSIQ, TOPIQ_NR_FACE

    assert spec is MUSIQ
    for s in (MUSIQ, MANIQA, CLIPIQA, TOPIQ_NR_FACE):
        assert s.requires == ("pyiqa",) and "PolyForm-Noncommercial" in s.licence and s.kind == "no-reference"
        assert "pip install 'lpmrf-bench[iqa]'" in unavailable_reason(s)
    with pytest.raises(UnavailableError, match=r"pip install 'lpmrf-bench\[iqa\]'"):
        MUSIQ.build(CPU, None)
    assert [s.name for s in (MUSIQ, MANIQA, CLIPIQA, TOPIQ_NR_FACE)] == ["musiq", "maniqa", "clipiqa", "topiq_nr-face"]


class RandomCropStandIn(torch.nn.Module):
    """Scores like MANIQA's crops: reads numpy's global RNG, so only seeding makes it repeatable."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x)
        offsets = np.random.randint(0, 4, size=x.shape[0])
        return torch.stack([x[i, :, o:, o:].mean() * 10 for i, o in enumerate(offsets)])[:, None]


def install_stand_in(monkeypatch, fail: bool = False) -> RandomCropStandIn:
    model = RandomCropStandIn()
    fake = types.ModuleType("pyiqa")
    fake.__spec__ = importlib.machinery.ModuleSpec("pyiqa", None)

    def create_metric(name, device=None, as_loss=False):
        if fail:
            raise OSError("Network is unreachable")
        assert name == "maniqa" and not as_loss
        return model

    fake.create_metric = create_metric
    monkeypatch.setitem(sys.modules, "pyiqa", fake)
    return model


def test_input_conversion_and_seeding(monkeypatch):
    from lpmrf_bench.metrics.base import unavailable_reason
    from lpmrf_bench.metrics.pyiqa_nr import MANIQA

    model = install_stand_in(monkeypatch)
    assert unavailable_reason(MANIQA) is None
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 8, 8), generator=g, dtype=torch.uint8)
    score = MANIQA.build(CPU, None)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = score(MetricBatch(out=images))
    assert np.array_equal(np.random.get_state()[1], before)  # the caller's RNG is untouched
    x = model.seen[0]
    assert x.dtype == torch.float32 and x.shape == (1, 3, 8, 8)
    torch.testing.assert_close(x[0], images[0].float() / 255)  # RGB order kept, [0, 1]
    b = score(MetricBatch(out=images.flip(0)))
    c = score(MetricBatch(out=images[1:2]))
    assert a.dtype == torch.float64 and a.shape == (3,)
    torch.testing.assert_close(a.flip(0), b)  # independent of order
    torch.testing.assert_close(a[1:2], c)  # and of batch size


def test_offline_failure_is_weights_missing(monkeypatch):
    from lpmrf_bench.metrics.pyiqa_nr import MANIQA

    install_stand_in(monkeypatch, fail=True)
    with pytest.raises(WeightsMissingError, match="maniqa.*Network is unreachable"):
        MANIQA.build(CPU, None)


def test_rejects_float_input():
    from lpmrf_bench.metrics.pyiqa_nr import to_pyiqa_input

    with pytest.raises(ValueError, match="uint8"):
        to_pyiqa_input(torch.zeros(1, 3, 4, 4))
