"""FAN (4 hourglasses, 98 WFLW landmarks): published layout and file format, a functional restatement of the
forward, and the published heatmap-to-point rule with its quirks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _face_reference import (FAN_MANIFEST, manifest_keys, photos, published_fan_input, published_points,
                             random_state, save_png, tensors_without_effect)
from lpmrf_bench.models.fan import FAN, heatmaps_to_points, load_fan


@pytest.fixture(scope="module")
def published_file(tmp_path_factory):
    state = random_state(manifest_keys(FAN_MANIFEST), seed=2)
    path = tmp_path_factory.mktemp("fan") / "alignment_WFLW_4HG.pth"
    torch.save({"state_dict": state}, path)
    return path, state


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    path = save_png(photos()[0], tmp_path_factory.mktemp("photos") / "astronaut.png")
    return published_fan_input(path)[None]


def test_layout_is_the_published_one():
    want = manifest_keys(FAN_MANIFEST)
    got = {k: list(v.shape) for k, v in FAN().state_dict().items()}
    assert got == want


def slow_coords(size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AddCoordsTh's channels by a pixel loop: 'x' counts rows (dim 2), 'y' columns; radius over its max."""
    xx, yy = torch.zeros(size, size), torch.zeros(size, size)
    for i in range(size):
        for j in range(size):
            xx[i, j] = i / (size - 1) * 2 - 1
            yy[i, j] = j / (size - 1) * 2 - 1
    rr = torch.sqrt(xx**2 + yy**2)
    return xx[None, None], yy[None, None], (rr / rr.max())[None, None]


def reference_heatmaps(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The published FAN forward (eval mode) against the raw state dict keys; returns the last module's output."""

    def bn(p, t):
        stats = sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"]
        return F.batch_norm(t, *stats, False, 0.0, 1e-5)

    def conv(p, t, **kw):
        return F.conv2d(t, sd[p + ".weight"], sd.get(p + ".bias"), **kw)

    def block(p, t):
        o1 = conv(p + ".conv1", F.relu(bn(p + ".bn1", t)), padding=1)
        o2 = conv(p + ".conv2", F.relu(bn(p + ".bn2", o1)), padding=1)
        o3 = conv(p + ".conv3", F.relu(bn(p + ".bn3", o2)), padding=1)
        res = conv(p + ".downsample.2", F.relu(bn(p + ".downsample.0", t))) if p + ".downsample.2.weight" in sd else t
        return torch.cat([o1, o2, o3], 1) + res

    def hourglass(p, level, t):
        up1 = block(f"{p}b1_{level}", t)
        low1 = block(f"{p}b2_{level}", F.avg_pool2d(t, 2, stride=2))
        low2 = hourglass(p, level - 1, low1) if level > 1 else block(f"{p}b2_plus_{level}", low1)
        return up1 + F.interpolate(block(f"{p}b3_{level}", low2), scale_factor=2, mode="nearest")

    n = x.shape[0]
    xx, yy, rr = (c.expand(n, -1, -1, -1) for c in slow_coords(256))
    t = conv("conv1.conv", torch.cat([x, xx, yy, rr], 1), stride=2, padding=3)
    t = F.relu(bn("bn1", t))
    t = F.avg_pool2d(block("conv2", t), 2, stride=2)
    previous = block("conv4", block("conv3", t))
    xx, yy, rr = (c.expand(n, -1, -1, -1) for c in slow_coords(64))
    heat = None
    for i in range(4):
        channels = [previous, xx, yy, rr]
        if heat is not None:
            boundary = torch.clamp(heat[:, -1:], 0.0, 1.0)
            channels += [torch.where(boundary > 0.05, xx, 0.0), torch.where(boundary > 0.05, yy, 0.0)]
        hg = hourglass(f"m{i}.", 4, conv(f"m{i}.coordconv.conv", torch.cat(channels, 1)))
        ll = F.relu(bn(f"bn_end{i}", conv(f"conv_last{i}", block(f"top_m_{i}", hg))))
        heat = conv(f"l{i}", ll)
        if i < 3:
            previous = previous + conv(f"bl{i}", ll) + conv(f"al{i}", heat)
    return heat


@pytest.mark.slow
def test_loads_published_file_and_matches_reference_forward(published_file, face):
    path, state = published_file
    model = load_fan(path)
    assert not model.training
    with torch.no_grad():
        got = model(face)
        want = reference_heatmaps(state, face)
    assert got.shape == (1, 99, 64, 64)
    boundary_on = (want[:, -1].clamp(0, 1) > 0.05).float().mean().item()
    assert 0.0 < boundary_on < 1.0, "the boundary gate should be partly open for this test to mean something"
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


@pytest.mark.slow
def test_every_loaded_tensor_changes_the_output(published_file, face, monkeypatch):
    path, _ = published_file
    model = load_fan(path)
    assert tensors_without_effect(model, face, monkeypatch) == []


@pytest.mark.slow
def test_file_must_be_the_published_dict(tmp_path, published_file):
    _, state = published_file
    torch.save(state, tmp_path / "bare.pth")
    with pytest.raises(ValueError, match=r"bare\.pth should be a dict with a 'state_dict'"):
        load_fan(tmp_path / "bare.pth")
    broken = dict(state)
    broken["m1.coordconv.conv.weight"] = torch.ones(256, 259, 1, 1)
    torch.save({"state_dict": broken}, tmp_path / "broken.pth")
    message = r"m1\.coordconv\.conv\.weight: file has \(256, 259, 1, 1\), model needs \(256, 261, 1, 1\)"
    with pytest.raises(ValueError, match=message):
        load_fan(tmp_path / "broken.pth")


def test_point_rule_matches_published_loop_per_image():
    gen = torch.Generator().manual_seed(3)
    heat = torch.rand(4, 98, 64, 64, generator=gen)
    heat[1, 5, 63, 10] = 2.0  # bottom row: image 1 takes the last pixel as every point's lower neighbour
    heat[2, 7, 0, 40] = 2.0  # top row: image 2 takes pixel 0 as every point's upper neighbour
    heat[3, 0, 0, 0] = 2.0  # pixel 0: its left neighbour wraps to the last pixel
    heat[3, 1, 20, 63] = 2.0  # row end: its right neighbour is the next row's first pixel
    got = heatmaps_to_points(heat, (512, 384)).numpy()
    for b in range(4):
        np.testing.assert_array_equal(got[b], published_points(heat[b].numpy(), width=384, height=512))


def test_peak_on_last_pixel_is_clamped():
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    heat = torch.exp(-((xx - 63) ** 2 + (yy - 63) ** 2) / 8)[None, None].repeat(1, 2, 1, 1)
    heat[0, 1] = torch.exp(-((xx - 20) ** 2 + (yy - 30) ** 2) / 8)
    points = heatmaps_to_points(heat, (512, 512))
    # right and lower neighbours clamp to the peak itself (larger than left/upper): +0.25 each, +0.5, x8
    assert points[0, 0].tolist() == [(63 + 0.25 + 0.5) * 8, (63 + 0.25 + 0.5) * 8]
    # the other point's lower neighbour becomes the last pixel (quirk), far from its peak: it moves up
    assert points[0, 1].tolist() == [(20 + 0.5) * 8, (30 - 0.25 + 0.5) * 8]


@pytest.mark.parametrize("dx,dy", [(3, 0), (0, -2), (4, 5)])
def test_shifted_heatmaps_move_points_by_the_shift(dx, dy):
    gen = torch.Generator().manual_seed(4)
    centres = 10 + 40 * torch.rand(98, 2, generator=gen)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")

    def maps(shift_x, shift_y):
        cx = centres[:, 0, None, None] + shift_x
        cy = centres[:, 1, None, None] + shift_y
        return torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 4)[None]

    a = heatmaps_to_points(maps(0, 0), (512, 512))
    b = heatmaps_to_points(maps(dx, dy), (512, 512))
    torch.testing.assert_close(b - a, torch.tensor([8.0 * dx, 8.0 * dy], dtype=torch.float64).expand_as(a))
