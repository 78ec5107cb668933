"""SwinIR: published layout (manifest), and the forward against a restatement of the published maths."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from _pmrf_tiny import perturbed_outputs_differ, randomize
from lpmrf_bench.models.swinir import SWINIR_CONFIGS, SwinIR

MANIFEST = json.loads((Path(__file__).parent / "manifests" / "difface_swinir_L.json").read_text())
TINY = SWINIR_CONFIGS["swinir_tiny"]


def reference_mask(h, w, ws, shift):
    """Shift mask from first principles: after rolling by -shift, rows/cols fall in 3 regions; tokens of one
    window may attend to each other only within the same region pair."""
    def region(p, n):
        return 0 if p < n - ws else (1 if p < n - shift else 2)
    labels = torch.tensor([[region(i, h) * 3 + region(j, w) for j in range(w)] for i in range(h)])
    win = labels.view(h // ws, ws, w // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    return torch.where(win[:, :, None] == win[:, None, :], 0.0, -100.0).double()


def reference_block(sd, p, t, h, w, ws, shift, heads, stored_res):
    """One Swin block as DifFace's SwinTransformerBlock.forward computes it, with explicit softmax attention."""
    b, _, c = t.shape
    x = F.layer_norm(t, (c,), sd[p + ".norm1.weight"], sd[p + ".norm1.bias"]).view(b, h, w, c)
    if shift:
        x = torch.roll(x, (-shift, -shift), (1, 2))
    win = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
    nb, n, _ = win.shape
    qkv = F.linear(win, sd[p + ".attn.qkv.weight"], sd[p + ".attn.qkv.bias"])
    q, k, v = qkv.reshape(nb, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    attn = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1)
    table = sd[p + ".attn.relative_position_bias_table"]
    bias = torch.empty(heads, n, n, dtype=t.dtype)
    for a in range(n):
        for bb in range(n):
            dy, dx = a // ws - bb // ws + ws - 1, a % ws - bb % ws + ws - 1
            bias[:, a, bb] = table[dy * (2 * ws - 1) + dx]
    attn = attn + bias
    if shift:
        mask = sd[p + ".attn_mask"] if (h, w) == (stored_res, stored_res) else reference_mask(h, w, ws, shift)
        attn = (attn.view(nb // mask.shape[0], mask.shape[0], heads, n, n) + mask[None, :, None]).view(-1, heads, n, n)
    y = (attn.softmax(-1) @ v).transpose(1, 2).reshape(nb, n, c)
    y = F.linear(y, sd[p + ".attn.proj.weight"], sd[p + ".attn.proj.bias"])
    y = y.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
    if shift:
        y = torch.roll(y, (shift, shift), (1, 2))
    t = t + y.reshape(b, h * w, c)
    z = F.layer_norm(t, (c,), sd[p + ".norm2.weight"], sd[p + ".norm2.bias"])
    z = F.gelu(F.linear(z, sd[p + ".mlp.fc1.weight"], sd[p + ".mlp.fc1.bias"]))
    z = F.linear(z, sd[p + ".mlp.fc2.weight"], sd[p + ".mlp.fc2.bias"])
    return t + z


def reference_forward(sd, cfg, x):
    """SwinIR.forward for upsampler 'nearest+conv', unshuffle, '1conv', as in DifFace's models/swinir.py."""
    conv = lambda name, y: F.conv2d(y, sd[name + ".weight"], sd[name + ".bias"], padding=1)
    mean = torch.Tensor((0.4488, 0.4371, 0.4040)).view(1, 3, 1, 1).type_as(x)  # float32 constants, as published
    feat = conv("conv_first.1", F.pixel_unshuffle((x - mean) * cfg.img_range, cfg.scale))
    b, c, h, w = feat.shape
    t = F.layer_norm(feat.flatten(2).transpose(1, 2), (c,), sd["patch_embed.norm.weight"], sd["patch_embed.norm.bias"])
    for i, depth in enumerate(cfg.depths):
        start = t
        for j in range(depth):
            shift = 0 if j % 2 == 0 else cfg.window_size // 2
            t = reference_block(sd, f"layers.{i}.residual_group.blocks.{j}", t, h, w, cfg.window_size, shift,
                                cfg.num_heads[i], cfg.img_size)
        t = conv(f"layers.{i}.conv", t.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2) + start
    t = F.layer_norm(t, (c,), sd["norm.weight"], sd["norm.bias"])
    y = conv("conv_after_body", t.transpose(1, 2).reshape(b, c, h, w)) + feat
    y = F.leaky_relu(conv("conv_before_upsample.0", y), 0.01)
    for n in (1, 2, 3):
        y = F.leaky_relu(conv(f"conv_up{n}", F.interpolate(y, scale_factor=2, mode="nearest")), 0.2)
    y = conv("conv_last", F.leaky_relu(conv("conv_hr", y), 0.2))
    return y / cfg.img_range + mean


def test_swinir_L_matches_the_published_layout():
    with torch.device("meta"):
        model = SwinIR(SWINIR_CONFIGS["swinir_L"])
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(got) == list(MANIFEST["tensors"])  # same keys in the same (published) order
    assert got == MANIFEST["tensors"]
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == MANIFEST["parameters"]
    assert round(n_params / 1e6, 1) == 15.8


def test_structural_buffers_match_first_principles():
    model = SwinIR(TINY)
    block = model.layers[0].residual_group.blocks[1]
    torch.testing.assert_close(block.attn_mask.double(), reference_mask(8, 8, 4, 2))
    ws = 4
    idx = block.attn.relative_position_index
    for a in range(ws * ws):
        for b in range(ws * ws):
            assert idx[a, b] == (a // ws - b // ws + ws - 1) * (2 * ws - 1) + (a % ws - b % ws + ws - 1)


@pytest.mark.parametrize("size", [64, 128])
def test_forward_matches_published_maths(size):
    model = randomize(SwinIR(TINY), seed=0).double().eval()
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        got = model(x)
        want = reference_forward(model.state_dict(), TINY, x)
    assert got.shape == (2, 3, size, size)
    assert (got - want).abs().max().item() < 1e-9


def test_residual_variant_adds_the_input_and_starts_at_the_identity():
    """`residual` (the embedded swinir_S): published maths minus the RGB mean plus the input; zero last conv at init."""
    cfg = dataclasses.replace(TINY, residual=True)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(SwinIR(cfg).double()(x), x)
        model = randomize(SwinIR(cfg), seed=0).double().eval()
        mean = torch.tensor((0.4488, 0.4371, 0.4040), dtype=torch.float32).view(1, 3, 1, 1).double()
        want = reference_forward(model.state_dict(), cfg, x) - mean + x
        assert (model(x) - want).abs().max().item() < 1e-9
    assert SWINIR_CONFIGS["swinir_S"].residual and not SWINIR_CONFIGS["swinir_L"].residual


@pytest.mark.slow
def test_every_loaded_tensor_matters():
    model = randomize(SwinIR(TINY), seed=2).eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert perturbed_outputs_differ(model, lambda m: m(x)) == []


def test_bad_size_names_the_multiple():
    with pytest.raises(ValueError, match="divisible by 32"):
        SwinIR(TINY)(torch.rand(1, 3, 48, 48))
