"""No-reference quality metrics through pyiqa (the optional `iqa` extra): MUSIQ, MANIQA, CLIP-IQA, TOPIQ-face.

pyiqa is PolyForm-Noncommercial and pulls ~70 packages, so it is optional: this module imports without it,
`metrics.base.unavailable_reason` says why a spec cannot run and how to fix it, and `build` raises `UnavailableError`
with the same hint. Inputs go to pyiqa exactly as its own image loader makes them: RGB float32 in [0, 1]
(`x / 255`), [B,3,H,W], no resizing (each network does its own).

MANIQA scores random 224x224 crops (numpy's global RNG); to keep values seeded and independent of batch
size and order, every image is scored alone under a fixed seed, with the caller's RNG states restored.
pyiqa fetches its weights itself (Hugging Face `chaofengc/IQA-PyTorch-Weights`, into
`<torch hub dir>/pyiqa`); offline, a failure to load becomes a `WeightsMissingError` saying where they go.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from lpmrf_bench.metrics.base import MetricBatch, MetricFn, MetricSpec
from lpmrf_bench.registry import UnavailableError
from lpmrf_bench.weights import WeightsMissingError

INSTALL_HINT = "pip install 'lpmrf-bench[iqa]'"
PYIQA_LICENCE = "pyiqa code: PolyForm-Noncommercial-1.0.0; weights: per model, see pyiqa's model cards"
CROP_SEED = 0


def to_pyiqa_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB [B,3,H,W] -> float32 [B,3,H,W] in [0, 1], as pyiqa's loader (`ToTensor`)."""
    if images.dtype != torch.uint8:
        raise ValueError(f"pyiqa metrics take the 8-bit images (uint8), got {images.dtype}")
    return images.to(torch.float32) / 255.0


def seeded_call(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, seed: int = CROP_SEED) -> torch.Tensor:
    """fn(x) with numpy's and torch's global RNGs seeded, restoring both afterwards."""
    np_state = np.random.get_state()
    devices = [x.device.index or 0] if x.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            np.random.seed(seed)
            torch.manual_seed(seed)
            return fn(x)
    finally:
        np.random.set_state(np_state)


def _builder(pyiqa_name: str) -> Callable[[torch.device, str | None], MetricFn]:
    def build(device: torch.device, weights_dir: str | None) -> MetricFn:
        try:
            import pyiqa
        except ImportError as exc:
            raise UnavailableError(f"metric {pyiqa_name!r} needs pyiqa: {INSTALL_HINT}") from exc
        try:
            model = pyiqa.create_metric(pyiqa_name, device=device, as_loss=False)
        except Exception as exc:  # pyiqa downloads on first use; offline every failure means "no weights"
            raise WeightsMissingError(
                f"pyiqa could not load {pyiqa_name!r} ({type(exc).__name__}: {exc}).\n"
                f"  On a connected machine run: python -c \"import pyiqa; pyiqa.create_metric('{pyiqa_name}')\"\n"
                f"  then copy <torch hub dir>/pyiqa (torch.hub.get_dir()) to the same place on this machine."
            ) from exc
        model.eval()

        @torch.no_grad()
        def score(batch: MetricBatch) -> torch.Tensor:
            x = to_pyiqa_input(batch.out).to(device)
            values = [seeded_call(model, x[i : i + 1]).flatten() for i in range(x.shape[0])]
            return torch.cat(values).to(torch.float64).cpu()

        return score

    return build


def _spec(name: str, conventions: str, description: str) -> MetricSpec:
    """`name` is also pyiqa's metric name; `conventions` pins the trained weights and the input handling."""
    return MetricSpec(
        name=name, spec=f"{name}/{conventions}/pyiqa-v1", kind="no-reference", higher_is_better=True,
        build=_builder(name), requires=("pyiqa",), install_hint=INSTALL_HINT, licence=PYIQA_LICENCE,
        description=description,
    )


MUSIQ = _spec("musiq", "koniq-rgb01", "MUSIQ trained on KonIQ-10k (pyiqa `musiq`)")
MANIQA = _spec("maniqa", "koniq-crop224x20-seed0-rgb01", "MANIQA trained on KonIQ-10k (pyiqa `maniqa`), seeded crops")
CLIPIQA = _spec("clipiqa", "rn50-rgb01", "CLIP-IQA with CLIP RN50 and antonym prompts (pyiqa `clipiqa`)")
TOPIQ_NR_FACE = _spec("topiq_nr-face", "cgfiqa-res50-rgb01",
                      "TOPIQ no-reference, ResNet-50, trained on CGFIQA faces (pyiqa `topiq_nr-face`)")
