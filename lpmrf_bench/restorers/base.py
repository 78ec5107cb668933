"""The restorer interface: what every method (ours, baselines, plug-ins) provides to the engine.

A `RestorerSpec` is cheap metadata (name, knobs, weights) that `lpmrf-bench list` can show without
building anything; `spec.load(weights, device)` builds the networks once and returns a callable that
restores batches. Randomness never comes from a global RNG: each image's draws come from
`RestoreBatch.noise`, seeded from (run seed, dataset, image_id, sample), so outputs do not depend on
batch size, order or rank.
"""
from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lpmrf_bench.weights import WeightFile

if TYPE_CHECKING:  # torch loads with the networks, not with the specs (`list methods` stays fast)
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Knob:
    """A user-settable parameter of a restorer (`--set name=v`, `--sweep name=v1,v2`)."""

    name: str
    type: type
    default: Any
    help: str = ""
    pd: bool = False  # the knob that traces the perception-distortion curve (e.g. PMRF's `steps`)
    choices: tuple[Any, ...] | None = None
    bounds: tuple[Any, Any] | None = None  # inclusive (low, high), e.g. CodeFormer's fidelity in [0, 1]

    def parse(self, text: str) -> Any:
        """Convert a command-line string to this knob's type, checking choices and bounds."""
        try:
            value = self.type(text)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"knob {self.name!r} takes {self.type.__name__} values, got {text!r}") from exc
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"knob {self.name!r} must be one of {list(self.choices)}, got {value!r}")
        if self.bounds is not None and not self.bounds[0] <= value <= self.bounds[1]:
            raise ValueError(f"knob {self.name!r} must be in [{self.bounds[0]}, {self.bounds[1]}], got {value!r}")
        return value


PRECISION = Knob("precision", str, "fp32", "fp32, or bf16 autocast for the networks", choices=("fp32", "bf16"))


def image_seed(seed: int, dataset: str, image_id: str, sample: int) -> int:
    """The 63-bit seed of one image's random draws; a pure function of its identity."""
    key = f"{seed}\x1f{dataset}\x1f{image_id}\x1f{sample}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1


@dataclass
class RestoreBatch:
    """One batch handed to a restorer.

    `lq` is float32 [B,3,H,W] in [0,1] on the run's device. `cache` lives as long as this batch of images
    and is shared by every knob configuration of the same method, so work that does not depend on the
    knobs (e.g. PMRF's posterior mean) is computed once per image across a sweep.
    """

    lq: torch.Tensor
    image_ids: Sequence[str]
    seeds: Sequence[int]  # one per image, from `image_seed`
    gt: torch.Tensor | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def noise(self, shape: Sequence[int], purpose: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Standard normal noise [B, *shape], drawn per image on the CPU so every device gives the same draw.

        `purpose` separates independent streams of the same image (e.g. "vae-posterior" vs "flow-source");
        `dtype` defaults to float32.
        """
        import torch

        draws = []
        for s in self.seeds:
            sub = int.from_bytes(hashlib.sha256(f"{s}:{purpose}".encode()).digest()[:8], "little") >> 1
            gen = torch.Generator(device="cpu").manual_seed(sub)
            draws.append(torch.randn(tuple(shape), generator=gen, dtype=torch.float32))
        return torch.stack(draws).to(device=self.lq.device, dtype=dtype or torch.float32)


def check_size(lq: torch.Tensor, size: int | None, method: str, image_ids: Sequence[str] | None = None) -> None:
    """Refuse inputs the networks were not built for; with `image_ids`, per image (the engine records each)."""
    if size is None or tuple(lq.shape[-2:]) == (size, size):
        return
    reason = (f"{method} with these weights restores {size}x{size} aligned face crops; got "
              f"{lq.shape[-2]}x{lq.shape[-1]}. Align and resize the faces to {size}x{size} first.")
    if image_ids is None:
        raise ValueError(reason)
    raise RestoreInputError({image_id: reason for image_id in image_ids})


@dataclass
class TrainingNoise:
    """The source noise σ_s a flow was trained with. The `noise_std` knob is set before weights load, so it
    cannot default to it; sampling at another value is allowed (a study of σ_s) but said, once per value."""

    trained: float | None = None  # None: the checkpoint does not record it
    said: set[float] = field(default_factory=set)

    def check(self, method: str, used: float) -> None:
        if self.trained is None or used == self.trained or used in self.said:
            return
        self.said.add(used)
        log.warning("%s samples with noise_std=%g but these weights were trained with %g; "
                    "--set noise_std=%g samples as trained", method, used, self.trained, self.trained)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast for the `precision=bf16` knob, a no-op for fp32."""
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def restore_signed(net: Callable[[torch.Tensor], torch.Tensor], lq: torch.Tensor, precision: str) -> torch.Tensor:
    """Run a network trained on [-1, 1] images the way basicsr-based inference does (CodeFormer, GFPGAN).

    `normalize(x, 0.5, 0.5)` in, then `tensor2img(out, min_max=(-1, 1))`: clamp to [-1, 1] and map back to [0, 1]
    (the 8-bit rounding is the engine's). `net` maps the normalised batch to the network's image output.
    """
    import torch

    with torch.no_grad(), autocast(lq.device, precision):
        out = net((lq - 0.5) / 0.5)
    return (out.float().clamp(-1, 1) + 1) / 2


class LoadedRestorer(Protocol):
    """What `RestorerSpec.load` returns: maps a batch and knob values to restored images in [0,1]."""

    def __call__(self, batch: RestoreBatch, knobs: dict[str, Any]) -> torch.Tensor: ...


@dataclass(frozen=True)
class RestorerSpec:
    """Metadata and a loader for one restoration method.

    `load(weights, device)` receives the weight-set name or path chosen by the user (None = the default
    set) and returns a `LoadedRestorer`. `weight_sets` maps weight-set names (`official`, `embedded`) to the
    files they need, so `weights list` and the default run can tell which sets are available.
    `input_size` is the square side the method's default weights require (None = any size); a loaded
    restorer with an `input_size` attribute overrides it (tiny or embedded weights take other sizes).
    `load_random(device, seed)`, where given, builds the default weights' architecture with seeded random
    values, so speed can be measured (`benchmarks/restorers.py`) on a machine without the published files.
    `explicit_weights` says the method also (or only, when `default_weights` is None) runs from a path given
    with `--weights`; a method with neither weight sets nor this flag takes no weights at all.
    """

    name: str
    load: Callable[[str | None, torch.device], LoadedRestorer]
    knobs: tuple[Knob, ...] = ()
    weight_sets: dict[str, tuple[WeightFile, ...]] = field(default_factory=dict)
    default_weights: str | None = None
    description: str = ""
    licence: str = ""
    input_size: int | None = None
    stochastic: bool = False
    load_random: Callable[[torch.device, int], LoadedRestorer] | None = None
    explicit_weights: bool = False

    @property
    def pd_knob(self) -> Knob | None:
        return next((k for k in self.knobs if k.pd), None)

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        known = ", ".join(k.name for k in self.knobs) or "none"
        raise KeyError(f"method {self.name!r} has no knob {name!r} (its knobs: {known})")

    def default_knobs(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.knobs}


def lazy_load(target: str) -> Callable[..., LoadedRestorer]:
    """A `RestorerSpec.load` (or `load_random`) that imports `"module:function"` on first call, so a spec costs no
    torch import."""

    def load(*args: Any) -> LoadedRestorer:
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)(*args)

    return load


class RestoreInputError(ValueError):
    """Some images of a batch cannot be restored (wrong size, missing precomputed output, ...).

    `reasons` maps image_id -> message; the engine records them as errors and restores the rest.
    """

    def __init__(self, reasons: dict[str, str]):
        self.reasons = reasons
        super().__init__("; ".join(f"{k}: {v}" for k, v in reasons.items()))
