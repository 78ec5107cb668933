"""Feature extractors for set-level metrics: a network that maps 8-bit images to one vector each.

Registered by name like the metrics, each with a spec string that pins the input path (resize, normalisation)
and the weights, so stored features of different extractors are never mixed. `build(device, weights_dir)`
loads the network once and returns a function uint8 [B,3,H,W] -> float64 [B, D] (on the CPU).

`mobilenet` is the offline feature space: torchvision's MobileNetV2 ImageNet weights (`mobilenet_v2-b0353104.pth`,
BSD-3), 1280-d global-average-pooled trunk features of the image at its own resolution (no resize), with the
ImageNet mean/std normalisation. It is not the FID Inception: its values are comparable only with each other,
at one resolution, which the reference's name fixes.

`inception` (torch-fidelity's file and input path: the PMRF protocol) and `inception-ptfid` (pytorch-fid's /
pyiqa's file and input path) and `inception-pyiqa` (that file with pyiqa's clean-mode resize, matching
clean-fid's published statistics) are the FID InceptionV3 of `metrics/inception.py`, 2048-d pool3 features.
`vgg16` is torch-fidelity's default for precision/recall: torchvision's VGG-16 ImageNet weights (the LPIPS trunk
file), TF1 bilinear resize to 224, ImageNet normalisation on the 0..255 scale, ReLU of fc2 (4096-d).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lpmrf_bench.metrics.inception import (inception_features, load_fid_inception, pytorch_fid_input, pyiqa_input,
                                           resize_bilinear_tf1, torch_fidelity_input)
from lpmrf_bench.published import MOBILENET_V2_WEIGHTS, PYTORCH_FID_INCEPTION, TORCH_FIDELITY_INCEPTION
from lpmrf_bench.published import VGG16 as VGG16_WEIGHTS
from lpmrf_bench.models.state_dicts import load_torchvision_style
from lpmrf_bench.registry import Registry
from lpmrf_bench.weights import WeightFile, resolve

FeatureFn = Callable[[torch.Tensor], torch.Tensor]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class FeatureExtractor:
    name: str
    spec: str
    dim: int
    build: Callable[[torch.device, str | None], FeatureFn]
    weights: tuple[WeightFile, ...] = ()
    licence: str = ""
    description: str = ""


def imagenet_normalised(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float32 (x / 255 - mean) / std with torchvision's ImageNet statistics."""
    if images.dtype != torch.uint8:
        raise ValueError(f"feature extractors take the 8-bit images (uint8), got {images.dtype}")
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.to(torch.float32) / 255.0 - mean) / std


def load_mobilenet_v2(path: str, device: torch.device) -> torch.nn.Module:
    """torchvision's MobileNetV2 with the published file loaded as it is (weights_only), in eval mode."""
    from torchvision.models import mobilenet_v2

    model = load_torchvision_style(path, mobilenet_v2, "torchvision's mobilenet_v2-b0353104.pth",
                                   "torchvision's MobileNetV2")
    return model.eval().requires_grad_(False).to(device)


@torch.no_grad()
def mobilenet_features(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """1280-d global-average-pooled trunk features (torchvision's forward up to the classifier), float64 [B, 1280]."""
    device = next(model.parameters()).device
    trunk = model.features(imagenet_normalised(images.to(device)))
    return trunk.mean(dim=(2, 3)).to("cpu", torch.float64)


def _build_mobilenet(device: torch.device, weights_dir: str | None) -> FeatureFn:
    model = load_mobilenet_v2(str(resolve(MOBILENET_V2_WEIGHTS, weights_dir=weights_dir)), device)
    return lambda images: mobilenet_features(model, images)


MOBILENET = FeatureExtractor(
    name="mobilenet", spec="mobilenet/tv-v2-b0353104/native-res-imagenet-norm-gap1280/v1", dim=1280,
    build=_build_mobilenet, weights=(MOBILENET_V2_WEIGHTS,), licence=MOBILENET_V2_WEIGHTS.licence,
    description="torchvision MobileNetV2 ImageNet, 1280-d pooled trunk features at the image's own resolution",
)

def _inception_builder(weights: WeightFile, input_path: Callable[[torch.Tensor], torch.Tensor]
                       ) -> Callable[[torch.device, str | None], FeatureFn]:
    def build(device: torch.device, weights_dir: str | None) -> FeatureFn:
        model = load_fid_inception(str(resolve(weights, weights_dir=weights_dir)), device)
        return lambda images: inception_features(model, images, input_path)
    return build


INCEPTION = FeatureExtractor(
    name="inception", spec="inception/torch-fidelity-6726825d/uint8-tf1-bilinear299-(x-128)div128-pool2048/v1",
    dim=2048, build=_inception_builder(TORCH_FIDELITY_INCEPTION, torch_fidelity_input),
    weights=(TORCH_FIDELITY_INCEPTION,), licence=TORCH_FIDELITY_INCEPTION.licence,
    description="FID InceptionV3 as torch-fidelity (PMRF protocol): TF1 bilinear resize to 299, pool3 2048-d",
)
INCEPTION_PYTORCH_FID = FeatureExtractor(
    name="inception-ptfid", spec="inception/pytorch-fid-6726825d/div255-F.interpolate-bilinear299-2x-1-pool2048/v1",
    dim=2048, build=_inception_builder(PYTORCH_FID_INCEPTION, pytorch_fid_input),
    weights=(PYTORCH_FID_INCEPTION,), licence=PYTORCH_FID_INCEPTION.licence,
    description="FID InceptionV3 as pytorch-fid / pyiqa's weights: F.interpolate bilinear to 299, pool3 2048-d",
)
INCEPTION_PYIQA = FeatureExtractor(
    name="inception-pyiqa", spec="inception/pytorch-fid-6726825d/pil-f-bicubic299-clip-(x-128)div128-pool2048/v1",
    dim=2048, build=_inception_builder(PYTORCH_FID_INCEPTION, pyiqa_input),
    weights=(PYTORCH_FID_INCEPTION,), licence=PYTORCH_FID_INCEPTION.licence,
    description="FID InceptionV3 as pyiqa (clean-fid 'clean' resize: float PIL bicubic to 299), pool3 2048-d",
)

VGG16_INPUT_SIZE = 224


def load_vgg16_fc2(path: str, device: torch.device) -> torch.nn.Module:
    """torchvision's VGG-16 with the published file loaded as it is, cut after fc2 (torch-fidelity drops the
    classifier's last dropout and fc3), in eval mode."""
    from torchvision.models import vgg16

    model = load_torchvision_style(path, vgg16, "torchvision's vgg16-397923af.pth", "torchvision's VGG-16")
    model.classifier = model.classifier[:4]
    return model.eval().requires_grad_(False).to(device)


@torch.no_grad()
def vgg16_features(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float64 [B, 4096]: ReLU(fc2) of the TF1-bilinear 224 image, as torch-fidelity's `fc2_relu`."""
    device = next(model.parameters()).device
    x = resize_bilinear_tf1(images.to(device, torch.float32), VGG16_INPUT_SIZE)
    mean = 255 * torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = 255 * torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return torch.relu(model((x - mean) / std)).to("cpu", torch.float64)


def _build_vgg16(device: torch.device, weights_dir: str | None) -> FeatureFn:
    model = load_vgg16_fc2(str(resolve(VGG16_WEIGHTS, weights_dir=weights_dir)), device)
    return lambda images: vgg16_features(model, images)


VGG16 = FeatureExtractor(
    name="vgg16", spec="vgg16/tv-397923af/uint8-tf1-bilinear224-imagenet-norm255-fc2relu4096/v1", dim=4096,
    build=_build_vgg16, weights=(VGG16_WEIGHTS,), licence=VGG16_WEIGHTS.licence,
    description="torchvision VGG-16 ImageNet ReLU(fc2) features as torch-fidelity's precision/recall default",
)

EXTRACTORS: Registry[FeatureExtractor] = Registry("feature extractor")
EXTRACTORS.add("mobilenet", "lpmrf_bench.metrics.extractors:MOBILENET")
EXTRACTORS.add("inception", "lpmrf_bench.metrics.extractors:INCEPTION")
EXTRACTORS.add("inception-ptfid", "lpmrf_bench.metrics.extractors:INCEPTION_PYTORCH_FID")
EXTRACTORS.add("inception-pyiqa", "lpmrf_bench.metrics.extractors:INCEPTION_PYIQA")
EXTRACTORS.add("vgg16", "lpmrf_bench.metrics.extractors:VGG16")
