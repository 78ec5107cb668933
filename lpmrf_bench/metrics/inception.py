"""The FID InceptionV3 (TensorFlow's 2015-12-05 graph) in plain PyTorch, 2048-d pool3 features.

One network loads both published conversions as they are (same key layout): torch-fidelity's
`weights-inception-2015-12-05-6726825d.pth` (the PMRF protocol) and pytorch-fid's / pyiqa's
`pt_inception-2015-12-05-6726825d.pth`. The libraries differ in the input path, which is part of each
extractor's spec: torch-fidelity resizes the 0..255 floats to 299 with TensorFlow 1.x bilinear
(align_corners=False, no half-pixel offset) and maps by (x - 128) / 128; pytorch-fid takes x / 255, resizes with
`F.interpolate(bilinear, align_corners=False)` and maps by 2x - 1; pyiqa (clean-fid's "clean" mode on
pytorch-fid's file) resizes each channel as a float PIL image with bicubic, clips to 0..255 and maps by
(x - 128) / 128. The TF graph's quirks are kept: average
pools exclude the padding, and the last block pools by max.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lpmrf_bench.models.state_dicts import load_torchvision_style

INPUT_SIZE = 299



class ConvBN(nn.Module):
    """Convolution without bias, batch norm (TF's eps 1e-3), ReLU: the unit of every Inception block."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = ConvBN(cin, 48, 1), ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg_pool(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = ConvBN(64, 96, 3, padding=1), ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1, self.branch7x7_2 = ConvBN(cin, c7, 1), ConvBN(c7, c7, **row)
        self.branch7x7_3 = ConvBN(c7, 192, **col)
        self.branch7x7dbl_1, self.branch7x7dbl_2 = ConvBN(cin, c7, 1), ConvBN(c7, c7, **col)
        self.branch7x7dbl_3, self.branch7x7dbl_4 = ConvBN(c7, c7, **row), ConvBN(c7, c7, **col)
        self.branch7x7dbl_5 = ConvBN(c7, 192, **row)
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dbl = x
        for i in range(1, 6):
            dbl = getattr(self, f"branch7x7dbl_{i}")(dbl)
        return torch.cat([self.branch1x1(x), self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))), dbl,
                          self.branch_pool(_avg_pool(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = ConvBN(cin, 192, 1), ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """`max_pool`: the TF graph's last block pools by max where the paper (and the block before) averages."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1, self.branch3x3dbl_2 = ConvBN(cin, 448, 1), ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl), self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """The FID network from the normalised 299x299 input to the 2048-d pool; `fc` (1008 logits) is loaded with
    the file, as published, but unused here."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128), InceptionC(768, 160)
        self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160), InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b, self.Mixed_7c = InceptionE(1280, max_pool=False), InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))


def resize_bilinear_tf1(x: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1.x `resize_bilinear(align_corners=False)`: source = dest * (in / out), no half-pixel
    offset, right/bottom neighbour clamped; torch-fidelity's exact ('slow') path."""
    def axis(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = torch.arange(size, dtype=x.dtype, device=x.device) * torch.tensor(n_in / size, dtype=torch.float32)
        lo = pos.long()
        return lo, (lo + 1).clamp_max(n_in - 1), pos - lo.to(pos.dtype)

    y_lo, y_hi, dy = axis(x.shape[2])
    x_lo, x_hi, dx = axis(x.shape[3])
    top, bottom = x[:, :, y_lo], x[:, :, y_hi]
    top = top[..., x_lo] + (top[..., x_hi] - top[..., x_lo]) * dx
    bottom = bottom[..., x_lo] + (bottom[..., x_hi] - bottom[..., x_lo]) * dx
    return top + (bottom - top) * dy.view(-1, 1)


def torch_fidelity_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 0..255 -> TF1 bilinear 299 -> (x - 128) / 128, as torch-fidelity's extractor."""
    return (resize_bilinear_tf1(images.to(torch.float32), INPUT_SIZE) - 128) / 128


def pytorch_fid_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> x / 255 (ToTensor) -> F.interpolate bilinear 299 (align_corners=False) -> 2x - 1, as pytorch-fid."""
    x = F.interpolate(images.to(torch.float32) / 255, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                      align_corners=False)
    return 2 * x - 1


def pyiqa_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> each channel a float32 PIL image, bicubic to 299, clipped to 0..255 -> (x - 128) / 128, as pyiqa's
    FID in clean mode (`fid_arch.py`, the same resize as clean-fid's `make_resizer('PIL', False, 'bicubic')`)."""
    import numpy as np
    from PIL import Image

    arrays = images.cpu().numpy().astype(np.float32)
    resized = np.stack([[np.asarray(Image.fromarray(channel, mode="F").resize((INPUT_SIZE, INPUT_SIZE),
                                                                           Image.BICUBIC)).clip(0, 255)
                         for channel in image] for image in arrays])
    return (torch.from_numpy(resized).to(images.device) - 128) / 128


def load_fid_inception(path: str, device: torch.device) -> FIDInceptionV3:
    """The network with a published conversion loaded as it is (weights_only, strict), in eval mode."""
    model = load_torchvision_style(path, FIDInceptionV3, "a FID Inception .pth", "the FID InceptionV3")
    return model.eval().requires_grad_(False).to(device)


@torch.no_grad()
def inception_features(model: FIDInceptionV3, images: torch.Tensor,
                       input_path: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float64 [B, 2048] pool3 features through one library's input path."""
    if images.dtype != torch.uint8:
        raise ValueError(f"feature extractors take the 8-bit images (uint8), got {images.dtype}")
    device = next(model.parameters()).device
    return model(input_path(images.to(device))).to("cpu", torch.float64)
