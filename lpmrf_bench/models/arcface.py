"""ArcFace ResNet-18 (`resnet_face18(use_se=False)`), the identity network of the `deg` metric.

Layout and names follow ronghuaiyang/arcface-pytorch `models/resnet.py` (`ResNetFace` with `IRBlock`), the
code VQFR and PMRF evaluate with, so the published `resnet18_110.pth` (a DataParallel state dict: every
key starts with `module.`) loads as it is. Input: one gray channel, 128x128, scaled to [-1, 1];
output: a 512-d embedding (not normalised). Dropout sits before `fc5` and is a no-op in eval mode.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from lpmrf_bench.models.state_dicts import load_state_dict_strict, read_torch_file

WIDTHS = (64, 128, 256, 512)
INPUT_SIZE = 128
EMBED_DIM = 512


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IRBlock(nn.Module):
    """Pre-BN residual block; one PReLU (a single slope) is applied twice, as published."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, cin)
        self.bn1 = nn.BatchNorm2d(cin)
        self.prelu = nn.PReLU()
        self.conv2 = _conv3x3(cin, cout, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.prelu(out + skip)


class ArcFaceResNet18(nn.Module):
    """[B,1,128,128] in [-1,1] -> [B,512]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv3x3(1, WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        cin = WIDTHS[0]
        for i, width in enumerate(WIDTHS):
            stride = 1 if i == 0 else 2
            self.add_module(f"layer{i + 1}", nn.Sequential(IRBlock(cin, width, stride), IRBlock(width, width)))
            cin = width
        self.bn4 = nn.BatchNorm2d(WIDTHS[-1])
        self.dropout = nn.Dropout()
        side = INPUT_SIZE // 16  # maxpool and three stride-2 stages: 128 -> 8
        self.fc5 = nn.Linear(WIDTHS[-1] * side * side, EMBED_DIM)
        self.bn5 = nn.BatchNorm1d(EMBED_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != (1, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"ArcFace expects [B,1,{INPUT_SIZE},{INPUT_SIZE}] gray input, got {tuple(x.shape)}")
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn4(x))
        return self.bn5(self.fc5(x.flatten(1)))


def load_arcface(path: str | os.PathLike, device: torch.device | str = "cpu") -> ArcFaceResNet18:
    """Build the network from the published `resnet18_110.pth` (keys with or without `module.`), in eval mode."""
    state = read_torch_file(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} should hold a flat state dict of tensors (the published resnet18_110.pth does)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = ArcFaceResNet18()
    load_state_dict_strict(model, state, path)
    return model.eval().requires_grad_(False).to(device)
