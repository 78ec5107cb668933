"""Write the key -> shape manifest (in the published `state_dict()` order) of CodeFormer's released
`codeformer.pth['params_ema']`, re-derived by hand from the public source.

Deliberately independent of `lpmrf_baselines.codeformer`: each entry restates what the published constructors
register for `CodeFormer(dim_embd=512, n_head=8, n_layers=9, codebook_size=1024, connect_list=['32', '64',
'128', '256'])` (sczhou/CodeFormer `basicsr/archs/vqgan_arch.py` Encoder, Generator, VectorQuantizer;
`basicsr/archs/codeformer_arch.py` CodeFormer, TransformerSALayer, Fuse_sft_block). The module's own parameter
`position_emb` comes first in `state_dict()`, then its children in registration order. All entries are
parameters (GroupNorm, LayerNorm and MultiheadAttention register no buffers). Run from the repository root:
`python tests/manifests/make_codeformer_manifest.py`.
"""
import json
from pathlib import Path

COMMITS = {"basicsr/archs/codeformer_arch.py": "aeb20c801b7a43caa24a1b6bf6236367445d5deb",
           "basicsr/archs/vqgan_arch.py": "85008306569a7ec8f3501a136a2e13b78ee015a4"}
HERE = Path(__file__).parent
NF, CH_MULT, EMB, IMG = 64, [1, 2, 2, 4, 4, 8], 256, 512
DIM, LAYERS, CODES, LATENT = 512, 9, 1024, 256
CHANNELS = {"16": 512, "32": 256, "64": 256, "128": 128, "256": 128, "512": 64}  # as published
CONNECT = ["32", "64", "128", "256"]

t = {}


def conv(name, cin, cout, k=3):
    t[f"{name}.weight"] = [cout, cin, k, k]
    t[f"{name}.bias"] = [cout]


def norm(name, c):
    t[f"{name}.weight"] = [c]
    t[f"{name}.bias"] = [c]


def resblock(name, cin, cout):
    norm(f"{name}.norm1", cin)
    conv(f"{name}.conv1", cin, cout)
    norm(f"{name}.norm2", cout)
    conv(f"{name}.conv2", cout, cout)
    if cin != cout:
        conv(f"{name}.conv_out", cin, cout, k=1)


def attn(name, c):
    norm(f"{name}.norm", c)
    for p in ("q", "k", "v", "proj_out"):
        conv(f"{name}.{p}", c, c, k=1)


def encoder():
    blocks = ["conv"]
    conv("encoder.blocks.0", 3, NF)
    res, cin = IMG, NF
    for i, mult in enumerate(CH_MULT):
        for _ in range(2):
            resblock(f"encoder.blocks.{len(blocks)}", cin, NF * mult)
            blocks.append("res")
            cin = NF * mult
            if res == 16:
                attn(f"encoder.blocks.{len(blocks)}", cin)
                blocks.append("attn")
        if i != len(CH_MULT) - 1:
            conv(f"encoder.blocks.{len(blocks)}.conv", cin, cin)
            blocks.append("down")
            res //= 2
    for kind in ("res", "attn", "res", "norm", "conv_out"):
        n = f"encoder.blocks.{len(blocks)}"
        {"res": lambda: resblock(n, cin, cin), "attn": lambda: attn(n, cin), "norm": lambda: norm(n, cin),
         "conv_out": lambda: conv(n, cin, EMB)}[kind]()
        blocks.append(kind)


def generator():
    cin = NF * CH_MULT[-1]
    conv("generator.blocks.0", EMB, cin)
    resblock("generator.blocks.1", cin, cin)
    attn("generator.blocks.2", cin)
    resblock("generator.blocks.3", cin, cin)
    n, res = 4, 16
    for i in reversed(range(len(CH_MULT))):
        for _ in range(2):
            resblock(f"generator.blocks.{n}", cin, NF * CH_MULT[i])
            cin, n = NF * CH_MULT[i], n + 1
            if res == 16:
                attn(f"generator.blocks.{n}", cin)
                n += 1
        if i != 0:
            conv(f"generator.blocks.{n}.conv", cin, cin)
            n, res = n + 1, res * 2
    norm(f"generator.blocks.{n}", cin)
    conv(f"generator.blocks.{n + 1}", cin, 3)


if __name__ == "__main__":
    t["position_emb"] = [LATENT, DIM]
    encoder()
    t["quantize.embedding.weight"] = [CODES, EMB]
    generator()
    t["feat_emb.weight"], t["feat_emb.bias"] = [DIM, EMB], [DIM]
    for i in range(LAYERS):
        p = f"ft_layers.{i}"
        t[f"{p}.self_attn.in_proj_weight"], t[f"{p}.self_attn.in_proj_bias"] = [3 * DIM, DIM], [3 * DIM]
        t[f"{p}.self_attn.out_proj.weight"], t[f"{p}.self_attn.out_proj.bias"] = [DIM, DIM], [DIM]
        t[f"{p}.linear1.weight"], t[f"{p}.linear1.bias"] = [2 * DIM, DIM], [2 * DIM]
        t[f"{p}.linear2.weight"], t[f"{p}.linear2.bias"] = [DIM, 2 * DIM], [DIM]
        norm(f"{p}.norm1", DIM)
        norm(f"{p}.norm2", DIM)
    norm("idx_pred_layer.0", DIM)
    t["idx_pred_layer.1.weight"] = [CODES, DIM]
    for size in CONNECT:
        c, p = CHANNELS[size], f"fuse_convs_dict.{size}"
        resblock(f"{p}.encode_enc", 2 * c, c)
        for branch in ("scale", "shift"):
            conv(f"{p}.{branch}.0", c, c)
            conv(f"{p}.{branch}.2", c, c)
    params = 0
    for shape in t.values():
        n = 1
        for s in shape:
            n *= s
        params += n
    doc = {"source": {"repository": "sczhou/CodeFormer", "files": COMMITS,
                      "checkpoint": "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth",
                      "key": "params_ema",
                      "config": "CodeFormer(dim_embd=512, codebook_size=1024, n_head=8, n_layers=9, "
                                "connect_list=['32','64','128','256']) (inference_codeformer.py)"},
           "parameters": params, "buffers": [], "tensors": t}
    (HERE / "codeformer.json").write_text(json.dumps(doc, indent=1) + "\n")
