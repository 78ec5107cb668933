"""The no-restoration row every table needs: the LQ image itself."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lpmrf_bench.restorers.base import RestoreBatch, RestorerSpec

if TYPE_CHECKING:
    import torch


def _restore(batch: RestoreBatch, knobs: dict[str, Any]) -> torch.Tensor:
    return batch.lq


IDENTITY = RestorerSpec(
    name="identity",
    load=lambda weights, device: _restore,
    description="returns the degraded input unchanged (the no-restoration baseline)",
    licence="Apache-2.0",
)
