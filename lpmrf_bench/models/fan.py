"""FAN with four stacked hourglasses (Adaptive Wing Loss, ICCV 2019): 98 WFLW landmarks, the `lmd` network.

Names and shapes follow the AdaptiveWingLoss `core/models.py` layout as copied into VQFR and PMRF
(`evaluation/awing_arch.py`), so the published `alignment_WFLW_4HG.pth` (`{"state_dict": ...}`) loads as
it is. Input: RGB in [0,1], [B,3,256,256]. Each hourglass predicts 99 heatmaps at 64x64: 98 landmarks and
one boundary map. Coordinate channels (CoordConv with radius) enter every hourglass; from the second one on,
the previous boundary map gates two more coordinate channels (pixels where it exceeds 0.05).
Coordinate convention of the published code: the channel called x varies along the rows (dim 2).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from lpmrf_bench.models.state_dicts import load_state_dict_strict, read_torch_file

NUM_LANDMARKS = 98
INPUT_SIZE = 256
HEATMAP_SIZE = 64
WIDTH = 256
BOUNDARY_THRESHOLD = 0.05


def coord_channels(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """xx (varies along dim 2), yy (along dim 3), both in [-1,1], and the radius scaled to max 1: [B,1,H,W] each."""
    b, _, h, w = x.shape
    rows = torch.arange(h, dtype=torch.float32, device=x.device) / (h - 1) * 2 - 1
    cols = torch.arange(w, dtype=torch.float32, device=x.device) / (w - 1) * 2 - 1
    xx = rows.view(1, 1, h, 1).expand(b, 1, h, w).to(x.dtype)
    yy = cols.view(1, 1, 1, w).expand(b, 1, h, w).to(x.dtype)
    rr = torch.sqrt(xx.pow(2) + yy.pow(2))
    return xx, yy, rr / rr.max()


class CoordConv(nn.Module):
    """A conv over [x, xx, yy, rr] (+ [xx, yy] masked by the boundary heatmap when `boundary`)."""

    def __init__(self, cin: int, cout: int, boundary: bool, **conv_kwargs: int):
        super().__init__()
        self.boundary = boundary
        self.conv = nn.Conv2d(cin + 3 + (2 if boundary else 0), cout, **conv_kwargs)

    def forward(self, x: torch.Tensor, heatmap: torch.Tensor | None = None) -> torch.Tensor:
        xx, yy, rr = coord_channels(x)
        parts = [x, xx, yy, rr]
        if self.boundary:
            if heatmap is None:
                raise ValueError("this CoordConv needs the previous hourglass's heatmaps")
            on = heatmap[:, -1:].clamp(0.0, 1.0) > BOUNDARY_THRESHOLD
            parts += [torch.where(on, xx, torch.zeros_like(xx)), torch.where(on, yy, torch.zeros_like(yy))]
        return self.conv(torch.cat(parts, dim=1))


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation block of three 3x3 convs (cout/2, cout/4, cout/4) whose outputs are concatenated."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), _conv3x3(cin, cout // 2)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout // 2), _conv3x3(cout // 2, cout // 4)
        self.bn3, self.conv3 = nn.BatchNorm2d(cout // 4), _conv3x3(cout // 4, cout // 4)
        self.downsample = None
        if cin != cout:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, kernel_size=1, bias=False)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.cat([out1, out2, out3], dim=1) + skip


class HourGlass(nn.Module):
    """Recursive hourglass of `depth` levels: skip branch b1, pooled branch b2 -> inner -> b3, nearest x2 up."""

    def __init__(self, depth: int, first: bool):
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(WIDTH, WIDTH, boundary=not first, kernel_size=1)
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", ConvBlock(WIDTH, WIDTH))
            self.add_module(f"b2_{level}", ConvBlock(WIDTH, WIDTH))
        self.add_module("b2_plus_1", ConvBlock(WIDTH, WIDTH))
        for level in range(1, depth + 1):
            self.add_module(f"b3_{level}", ConvBlock(WIDTH, WIDTH))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up = self.get_submodule(f"b1_{level}")(x)
        low = self.get_submodule(f"b2_{level}")(F.avg_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else self.get_submodule("b2_plus_1")(low)
        low = self.get_submodule(f"b3_{level}")(low)
        return up + F.interpolate(low, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor, heatmap: torch.Tensor | None) -> torch.Tensor:
        return self._level(self.depth, self.coordconv(x, heatmap))


class FAN(nn.Module):
    """[B,3,256,256] RGB in [0,1] -> heatmaps of the last hourglass [B,99,64,64] (98 landmarks + boundary)."""

    def __init__(self, num_modules: int = 4, num_landmarks: int = NUM_LANDMARKS, depth: int = 4):
        super().__init__()
        self.num_modules = num_modules
        self.conv1 = CoordConv(3, 64, boundary=False, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, WIDTH)
        for i in range(num_modules):
            self.add_module(f"m{i}", HourGlass(depth, first=i == 0))
            self.add_module(f"top_m_{i}", ConvBlock(WIDTH, WIDTH))
            self.add_module(f"conv_last{i}", nn.Conv2d(WIDTH, WIDTH, kernel_size=1))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(WIDTH))
            self.add_module(f"l{i}", nn.Conv2d(WIDTH, num_landmarks + 1, kernel_size=1))
            if i < num_modules - 1:
                self.add_module(f"bl{i}", nn.Conv2d(WIDTH, WIDTH, kernel_size=1))
                self.add_module(f"al{i}", nn.Conv2d(num_landmarks + 1, WIDTH, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"FAN expects [B,3,{INPUT_SIZE},{INPUT_SIZE}] RGB input, got {tuple(x.shape)}")
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, stride=2)))
        heatmaps = None
        for i in range(self.num_modules):
            feat = self.get_submodule(f"top_m_{i}")(self.get_submodule(f"m{i}")(x, heatmaps))
            feat = F.relu(self.get_submodule(f"bn_end{i}")(self.get_submodule(f"conv_last{i}")(feat)))
            heatmaps = self.get_submodule(f"l{i}")(feat)
            if i < self.num_modules - 1:
                x = x + self.get_submodule(f"bl{i}")(feat) + self.get_submodule(f"al{i}")(heatmaps)
        return heatmaps


def heatmaps_to_points(heatmaps: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """[B,N,h,w] heatmaps -> float64 [B,N,2] (x, y) in pixels of an image of `image_size` (H, W).

    The published rule (`calculate_points`), quirks included: the argmax pixel, moved a quarter pixel
    towards the larger of its left/right and up/down neighbours on the FLATTENED map (so row ends wrap to
    the next row, and pixel 0's left neighbour is the last pixel), plus 0.5, scaled by (W/w, H/h). If any
    of an image's points has no pixel below it (i + w >= h*w), all its points use the last pixel as the
    lower neighbour; if any has i - w <= 0, all use pixel 0 as the upper one. A peak on the last pixel made
    the published code index out of bounds; its right neighbour is clamped to the last pixel here.
    """
    b, n, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, n, h * w)
    last = h * w - 1
    idx = flat.argmax(dim=-1)

    def at(i: torch.Tensor) -> torch.Tensor:
        return flat.gather(-1, i.unsqueeze(-1)).squeeze(-1)

    right = at((idx + 1).clamp(max=last))
    left = at(torch.remainder(idx - 1, h * w))
    below = torch.where((idx + w >= h * w).any(dim=1, keepdim=True), flat[..., last], at((idx + w).clamp(max=last)))
    above = torch.where((idx - w <= 0).any(dim=1, keepdim=True), flat[..., 0], at((idx - w).clamp(min=0)))
    step = torch.stack([torch.sign(right - left), torch.sign(below - above)], dim=-1).to(torch.float64) * 0.25
    points = torch.stack([idx % w, idx // w], dim=-1).to(torch.float64) + step + 0.5
    height, width = image_size
    return points * torch.tensor([width / w, height / h], dtype=torch.float64, device=points.device)


def load_fan(path: str | os.PathLike, device: torch.device | str = "cpu") -> FAN:
    """Build the network from the published `alignment_WFLW_4HG.pth` (`{"state_dict": ...}`), in eval mode."""
    ckpt = read_torch_file(path)
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path} should be a dict with a 'state_dict' entry (the published alignment_WFLW_4HG.pth "
                         f"is); found {found}")
    model = FAN()
    load_state_dict_strict(model, dict(state), path)
    return model.eval().requires_grad_(False).to(device)
