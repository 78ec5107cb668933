"""LPIPS v0.1 through the `lpips` package, with the ImageNet backbone resolved by `lpmrf_bench.weights`.

The linear heads ship inside the `lpips` wheel; the AlexNet / VGG-16 trunks are torchvision's published
ImageNet files, which `lpips` would otherwise download by itself. We build the trunk randomly
(`pnet_rand=True`) and load the resolved file into it, mapping torchvision's `features.<i>.<param>` keys
onto lpips' `slice<k>.<i>.<param>` (lpips keeps torchvision's layer index as the module name).

The metric takes the 8-bit images and maps them to [-1, 1] itself, exactly as PMRF's
`evaluation/calculate_lpips.py` does (`x / 255`, then `normalize(mean=0.5, std=0.5)`), so the range trap
(feeding [0, 1] to a network that expects [-1, 1]) cannot happen. pyiqa's `2 * x - 1` gives the same
float32 values. Protocols differ only in the trunk: PMRF uses VGG, pyiqa's default `lpips` AlexNet.
"""
from __future__ import annotations

import warnings

import lpips as lpips_pkg
import torch

from lpmrf_bench.metrics.base import MetricFn, MetricSpec
from lpmrf_bench.metrics.fullref import needs_gt
from lpmrf_bench.published import ALEXNET, VGG16
from lpmrf_bench.weights import WeightFile, WeightsError, resolve

TRUNKS: dict[str, WeightFile] = {"alex": ALEXNET, "vgg": VGG16}


def to_lpips_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float32 in [-1, 1], as `normalize(x / 255, 0.5, 0.5)` in the published scripts."""
    if images.dtype != torch.uint8:
        raise ValueError(f"LPIPS takes the 8-bit images (uint8), got {images.dtype}; round outputs to 8 bit first")
    return (images.to(torch.float32) / 255.0 - 0.5) / 0.5


def load_trunk(model: lpips_pkg.LPIPS, path: str, net: str) -> None:
    """Load torchvision's AlexNet / VGG-16 file (`features.*` keys; `classifier.*` unused) into `model.net`."""
    expected = TRUNKS[net].filename
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files fail in many ways; all mean "replace the file"
        raise WeightsError(f"{path}: cannot read it as torchvision's {expected} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected torchvision's {expected} (a state dict), got {type(state).__name__}")
    mapped = {}
    for key, want in model.net.state_dict().items():
        _, index, param = key.split(".")  # slice<k>.<torchvision index>.<weight|bias>
        source_key = f"features.{index}.{param}"
        if source_key not in state:
            raise WeightsError(f"{path}: key {source_key!r} is missing; this is not torchvision's {expected}")
        got = state[source_key]
        if tuple(got.shape) != tuple(want.shape):
            raise WeightsError(f"{path}: {source_key!r} has shape {tuple(got.shape)}, the LPIPS-{net} trunk needs "
                               f"{tuple(want.shape)}; this is not torchvision's {expected}")
        mapped[key] = got
    model.net.load_state_dict(mapped)


def build_lpips(
    net: str, device: torch.device, weights_dir: str | None = None, path: str | None = None
) -> lpips_pkg.LPIPS:
    """An `lpips.LPIPS` v0.1 with the published heads and the resolved torchvision trunk, in eval mode."""
    if net not in TRUNKS:
        raise ValueError(f"unknown LPIPS trunk {net!r}; known: {', '.join(TRUNKS)}")
    resolved = resolve(TRUNKS[net], explicit=path, weights_dir=weights_dir)
    # building the random trunk draws from the global RNG; keep the caller's stream untouched
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        model = lpips_pkg.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False)
    load_trunk(model, str(resolved), net)
    return model.eval().requires_grad_(False).to(device)


@torch.no_grad()
def lpips_distance(model: lpips_pkg.LPIPS, out: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-image LPIPS of uint8 images [B,3,H,W], float64 [B]."""
    device = next(model.parameters()).device
    d = model(to_lpips_range(out).to(device), to_lpips_range(gt).to(device))
    return d.flatten().to(torch.float64)


def _builder(net: str):
    def build(device: torch.device, weights_dir: str | None) -> MetricFn:
        model = build_lpips(net, device, weights_dir)
        return lambda b: lpips_distance(model, b.out, needs_gt(b))

    return build


LPIPS_VGG = MetricSpec(
    name="lpips", spec="lpips/vgg-v0.1/pmrf-v1", kind="full-reference", higher_is_better=False,
    build=_builder("vgg"), weights=(VGG16,), licence="BSD-2-Clause (lpips heads)",
    description="LPIPS v0.1, VGG-16 trunk, uint8 -> [-1, 1], per image (PMRF evaluation/calculate_lpips.py)",
)
LPIPS_ALEX = MetricSpec(
    name="lpips", spec="lpips/alex-v0.1/pyiqa-v1", kind="full-reference", higher_is_better=False,
    build=_builder("alex"), weights=(ALEXNET,), licence="BSD-2-Clause (lpips heads)",
    description="LPIPS v0.1, AlexNet trunk, uint8 -> [-1, 1], per image (pyiqa's default `lpips`)",
)
