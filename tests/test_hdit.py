"""HDiT: published layout (manifest), and the forward against a restatement of the published maths."""
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from _pmrf_tiny import perturbed_outputs_differ, randomize
from lpmrf_bench.models.archs import arch_config, arch_names, build_arch
from lpmrf_bench.models.hdit import HDIT_CONFIGS, HDiT

MANIFEST = json.loads((Path(__file__).parent / "manifests" / "pmrf_hf_model_safetensors.json").read_text())
TINY = HDIT_CONFIGS["hdit_tiny"]


def rms(x, scale, eps=1e-6):
    return x * scale * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def geglu(x, weight):
    a, gate = F.linear(x, weight).chunk(2, dim=-1)
    return a * F.gelu(gate)


def neighborhood_allowed(h, w, k):
    """[h*w, h*w] bool: query (i, j) may see key (y, x) iff it lies in the clamped k x k window (NATTEN)."""
    allowed = torch.zeros(h * w, h * w, dtype=torch.bool)
    for i in range(h):
        i0 = min(max(i - k // 2, 0), h - k)
        for j in range(w):
            j0 = min(max(j - k // 2, 0), w - k)
            for y in range(i0, i0 + k):
                for x in range(j0, j0 + k):
                    allowed[i * w + j, y * w + x] = True
    return allowed


def attention_block(sd, p, x, pos, cond, d_head, kernel):
    """NeighborhoodSelfAttentionBlock / SelfAttentionBlock.forward of image_transformer_v2 (non-fused path)."""
    n, h, w, c = x.shape
    nh = c // d_head
    y = rms(x, F.linear(cond, sd[p + ".norm.linear.weight"])[:, None, None, :] + 1)
    q, k, v = F.linear(y, sd[p + ".qkv_proj.weight"]).view(n, h, w, 3, nh, d_head).permute(3, 0, 4, 1, 2, 5)
    sqrt_scale = sd[p + ".scale"].sqrt()[:, None, None, None]
    q = q * sqrt_scale * torch.rsqrt(q.pow(2).sum(-1, keepdim=True) + 1e-6)
    k = k * sqrt_scale * torch.rsqrt(k.pow(2).sum(-1, keepdim=True) + 1e-6)
    # positions are float32 (make_axial_pos has no dtype); the global block casts them to the activations'
    # dtype, the neighborhood block instead casts the frequencies to float32
    pos = pos.to(q.dtype) if kernel is None else pos
    freqs = sd[p + ".pos_emb.freqs"].to(pos.dtype)  # [nh, d_head // 8]
    theta = torch.cat((pos[..., None, 0:1] * freqs, pos[..., None, 1:2] * freqs), dim=-1).movedim(-2, -4)
    theta = theta.to(q.dtype)
    d = theta.shape[-1]

    def rotate(t):
        t1, t2 = t[..., :d], t[..., d:2 * d]
        return torch.cat((t1 * theta.cos() - t2 * theta.sin(), t2 * theta.cos() + t1 * theta.sin(), t[..., 2 * d:]), -1)

    q, k = rotate(q).reshape(n, nh, h * w, d_head), rotate(k).reshape(n, nh, h * w, d_head)
    logits = q @ k.transpose(-1, -2)  # scale 1: the cosine-sim scale is already in q and k
    if kernel is not None:
        logits = logits.masked_fill(~neighborhood_allowed(h, w, kernel), float("-inf"))
    out = logits.softmax(-1) @ v.reshape(n, nh, h * w, d_head)
    out = out.view(n, nh, h, w, d_head).permute(0, 2, 3, 1, 4).reshape(n, h, w, c)
    return F.linear(out, sd[p + ".out_proj.weight"]) + x


def layer(sd, p, x, pos, cond, spec):
    x = attention_block(sd, p + ".self_attn", x, pos, cond, spec.d_head, spec.kernel_size)
    y = rms(x, F.linear(cond, sd[p + ".ff.norm.linear.weight"])[:, None, None, :] + 1)
    return F.linear(geglu(y, sd[p + ".ff.up_proj.weight"]), sd[p + ".ff.down_proj.weight"]) + x


def merge(x, weight, ph, pw):
    return F.linear(torch.cat([x[..., a::ph, b::pw, :] for a in range(ph) for b in range(pw)], dim=-1), weight)


def split(x, weight, ph, pw):
    y = F.linear(x, weight)
    e = y.shape[-1] // (ph * pw)
    out = y.new_zeros(*y.shape[:-3], y.shape[-3] * ph, y.shape[-2] * pw, e)
    for a in range(ph):
        for b in range(pw):
            out[..., a::ph, b::pw, :] = y[..., (a * pw + b) * e:(a * pw + b + 1) * e]
    return out


def reference_forward(sd, cfg, x, t):
    """ImageTransformerDenoiserModelV2.forward with no class/mapping/aug conditioning (as PMRF runs it)."""
    ph, pw = cfg.patch_size
    x = merge(x.movedim(-3, -1), sd["patch_in.proj.weight"], ph, pw)
    h, w = x.shape[1:3]
    centers = lambda m: (torch.linspace(-1, 1, m + 1)[:-1] + torch.linspace(-1, 1, m + 1)[1:]) / 2
    pos = torch.stack(torch.meshgrid(centers(h), centers(w), indexing="ij"), -1)
    fourier = lambda u, wt: torch.cat([(2 * math.pi * u @ wt.T).cos(), (2 * math.pi * u @ wt.T).sin()], -1)
    emb = F.linear(fourier(t[:, None], sd["time_emb.weight"]), sd["time_in_proj.weight"])
    emb = emb + F.linear(fourier(x.new_zeros(x.shape[0], 9), sd["aug_emb.weight"]), sd["aug_in_proj.weight"])
    cond = rms(emb, sd["mapping.in_norm.scale"])
    for i in range(cfg.mapping_depth):
        b = f"mapping.blocks.{i}"
        up = geglu(rms(cond, sd[b + ".norm.scale"]), sd[b + ".up_proj.weight"])
        cond = F.linear(up, sd[b + ".down_proj.weight"]) + cond
    cond = rms(cond, sd["mapping.out_norm.scale"])
    skips = []
    for i, spec in enumerate(cfg.levels[:-1]):
        for j in range(spec.depth):
            x = layer(sd, f"down_levels.{i}.{j}", x, pos, cond, spec)
        skips.append((x, pos))
        x = merge(x, sd[f"merges.{i}.proj.weight"], 2, 2)
        pos = torch.stack([pos[0::2, 0::2], pos[0::2, 1::2], pos[1::2, 0::2], pos[1::2, 1::2]], -2).mean(-2)
    for j in range(cfg.levels[-1].depth):
        x = layer(sd, f"mid_level.{j}", x, pos, cond, cfg.levels[-1])
    for i in reversed(range(len(cfg.levels) - 1)):
        skip, pos = skips[i]
        up = split(x, sd[f"splits.{i}.proj.weight"], 2, 2)
        x = skip + sd[f"splits.{i}.fac"] * (up - skip)
        for j in range(cfg.levels[i].depth):
            x = layer(sd, f"up_levels.{i}.{j}", x, pos, cond, cfg.levels[i])
    return split(rms(x, sd["out_norm.scale"]), sd["patch_out.proj.weight"], ph, pw).movedim(-1, -3)


def test_imagenet256sp4_matches_the_published_layout():
    with torch.device("meta"):
        model = build_arch("hdit_ImageNet256Sp4")
    want = {k.removeprefix("model."): v for k, v in MANIFEST["tensors"].items() if k.startswith("model.")}
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(got) == list(want) and got == want
    n_params = sum(p.numel() for p in model.parameters())
    assert round(n_params / 1e6, 1) == 160.5
    assert sorted(k for k in want if k not in dict(model.named_parameters())) == sorted(
        k.removeprefix("model.") for k in MANIFEST["buffers"] if k.startswith("model.")
    )


def test_registry_names_and_round_trip():
    assert {"hdit_ImageNet256Sp4", "hdit_XL2", "hdit_tiny", "swinir_L", "swinir_M", "swinir_tiny"} <= set(arch_names())
    xl2 = arch_config("hdit_XL2")
    assert [lv.width for lv in xl2.levels] == [384, 768] and [lv.kernel_size for lv in xl2.levels] == [7, None]
    from lpmrf_bench.models.archs import config_fields
    assert arch_config("hdit_tiny", json.loads(json.dumps(config_fields(TINY)))) == TINY
    with pytest.raises(KeyError, match="unknown architecture"):
        arch_config("hdit_huge")


@pytest.mark.slow
@pytest.mark.parametrize("size", [32, 48])
def test_forward_matches_published_maths(size):
    model = randomize(HDiT(TINY), seed=0).double().eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, size, size, generator=gen, dtype=torch.float64)
    t = torch.tensor([0.13, 0.76], dtype=torch.float64)
    with torch.no_grad():
        got = model(x, t)
        want = reference_forward(model.state_dict(), TINY, x, t)
    assert got.shape == x.shape
    assert (got - want).abs().max().item() < 1e-9 * max(1.0, want.abs().max().item())


@pytest.mark.slow
def test_every_loaded_tensor_matters():
    model = randomize(HDiT(TINY), seed=2).eval()
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([0.4])
    with torch.no_grad():
        # aug_emb.weight only ever meets a zero augmentation vector (cos 0 = 1, sin 0 = 0): inert, as published
        assert perturbed_outputs_differ(model, lambda m: m(x, t), skip={"aug_emb.weight"}) == []


@pytest.mark.slow
def test_bf16_autocast_runs_close_to_fp32():
    model = randomize(HDiT(TINY), seed=4).eval()
    x, t = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(5)), torch.tensor([0.5])
    with torch.no_grad():
        ref = model(x, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x, t)
    assert low.dtype == torch.bfloat16
    assert ((low.float() - ref).norm() / ref.norm()).item() < 0.05


def test_bad_size_names_the_multiple():
    with pytest.raises(ValueError, match="divisible by 8"):
        HDiT(TINY)(torch.zeros(1, 3, 36, 36), torch.zeros(1))


@pytest.mark.slow
def test_whole_model_compiles_as_one_graph():
    # the CUDA fast path compiles the model around flex attention: no graph break may split it. aot_eager runs
    # the decomposed ops, whose float32 rounding differs by CPU (1.8e-6 on outputs ~0.1 on an AMD EPYC, none on
    # an Intel Xeon): float32's default tolerances, not bit equality
    model = randomize(HDiT(TINY), seed=6).eval()
    x, t = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(7)), torch.tensor([0.3])
    with torch.no_grad():
        compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
        torch.testing.assert_close(compiled(x, t), model(x, t))


def test_published_init_starts_every_block_as_the_identity():
    # zero-initialised out/down projections, modulations and patch_out: a fresh network predicts zero velocity
    model = HDiT(TINY)
    assert model.patch_out.proj.weight.abs().sum() == 0 and model.mid_level[0].self_attn.out_proj.weight.abs().sum() == 0
    with torch.no_grad():
        assert torch.equal(model(torch.randn(1, 3, 16, 16), torch.tensor([0.5])), torch.zeros(1, 3, 16, 16))
