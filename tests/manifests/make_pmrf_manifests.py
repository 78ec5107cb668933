"""Write the key -> shape manifests (in the published `state_dict()` order) of the published checkpoints, re-derived by hand from the public source.

Deliberately independent of `lpmrf_bench.models`: each entry below restates what the published constructors
register (PMRF `arch/hourglass/image_transformer_v2.py`, `arch/swinir/swinir.py`, `utils/create_arch.py`;
DifFace `models/swinir.py`, which PMRF copies). Run from the repository root:
`python tests/manifests/make_pmrf_manifests.py`.
"""
import json
from pathlib import Path

PMRF_COMMIT = "dc2ec0d9c9f81bf23a89320a7a512e32f8297775"
DIFFACE_COMMIT = "cdbc63062b60fe9ef55cc80d60a29d0945658d12"
HERE = Path(__file__).parent


def hdit(prefix, widths, depths, heads_dim, mapping_width=768, mapping_depth=2, patch=4, channels=3):
    t, params = {}, set()

    def p(name, shape, param=True):
        t[prefix + name] = list(shape)
        if param:
            params.add(prefix + name)

    mw, mff = mapping_width, 3 * mapping_width
    p("patch_in.proj.weight", (widths[0], channels * patch * patch))
    p("time_emb.weight", (mw // 2, 1), param=False)
    p("time_in_proj.weight", (mw, mw))
    p("aug_emb.weight", (mw // 2, 9), param=False)
    p("aug_in_proj.weight", (mw, mw))
    p("mapping.in_norm.scale", (mw,))
    for i in range(mapping_depth):
        p(f"mapping.blocks.{i}.norm.scale", (mw,))
        p(f"mapping.blocks.{i}.up_proj.weight", (2 * mff, mw))
        p(f"mapping.blocks.{i}.down_proj.weight", (mw, mff))
    p("mapping.out_norm.scale", (mw,))

    def layer(base, w):
        nh = w // heads_dim
        p(f"{base}.self_attn.scale", (nh,))  # a module's own tensors come before its children's
        p(f"{base}.self_attn.norm.linear.weight", (w, mw))
        p(f"{base}.self_attn.qkv_proj.weight", (3 * w, w))
        p(f"{base}.self_attn.pos_emb.freqs", (nh, (heads_dim // 2) // 4), param=False)
        p(f"{base}.self_attn.out_proj.weight", (w, w))
        p(f"{base}.ff.norm.linear.weight", (w, mw))
        p(f"{base}.ff.up_proj.weight", (2 * 3 * w, w))
        p(f"{base}.ff.down_proj.weight", (w, 3 * w))

    for group in ("down_levels", "up_levels"):  # registered as two ModuleLists, then mid_level
        for i, (w, d) in enumerate(zip(widths[:-1], depths[:-1])):
            for j in range(d):
                layer(f"{group}.{i}.{j}", w)
    for j in range(depths[-1]):
        layer(f"mid_level.{j}", widths[-1])
    for i in range(len(widths) - 1):
        p(f"merges.{i}.proj.weight", (widths[i + 1], 4 * widths[i]))
    for i in range(len(widths) - 1):
        p(f"splits.{i}.fac", (1,))
        p(f"splits.{i}.proj.weight", (4 * widths[i], widths[i + 1]))
    p("out_norm.scale", (widths[0],))
    p("patch_out.proj.weight", (channels * patch * patch, widths[0]))
    return t, params


def swinir(prefix, embed=180, depths=(6,) * 8, heads=6, window=8, resolution=64, mlp_ratio=2, sf=8, num_feat=64):
    t, params = {}, set()

    def p(name, shape, param=True):
        t[prefix + name] = list(shape)
        if param:
            params.add(prefix + name)

    def conv(name, cin, cout):
        p(f"{name}.weight", (cout, cin, 3, 3))
        p(f"{name}.bias", (cout,))

    def ln(name, d):
        p(f"{name}.weight", (d,))
        p(f"{name}.bias", (d,))

    conv("conv_first.1", 3 * sf * sf, embed)
    ln("patch_embed.norm", embed)
    n = window * window
    for i, d in enumerate(depths):
        for j in range(d):
            b = f"layers.{i}.residual_group.blocks.{j}"
            if j % 2 == 1:  # shifted blocks register their mask as a (persistent) buffer of the block itself
                p(f"{b}.attn_mask", ((resolution // window) ** 2, n, n), param=False)
            ln(f"{b}.norm1", embed)
            p(f"{b}.attn.relative_position_bias_table", ((2 * window - 1) ** 2, heads))
            p(f"{b}.attn.relative_position_index", (n, n), param=False)
            p(f"{b}.attn.qkv.weight", (3 * embed, embed))
            p(f"{b}.attn.qkv.bias", (3 * embed,))
            p(f"{b}.attn.proj.weight", (embed, embed))
            p(f"{b}.attn.proj.bias", (embed,))
            ln(f"{b}.norm2", embed)
            p(f"{b}.mlp.fc1.weight", (embed * mlp_ratio, embed))
            p(f"{b}.mlp.fc1.bias", (embed * mlp_ratio,))
            p(f"{b}.mlp.fc2.weight", (embed, embed * mlp_ratio))
            p(f"{b}.mlp.fc2.bias", (embed,))
        conv(f"layers.{i}.conv", embed, embed)
    ln("norm", embed)
    conv("conv_after_body", embed, embed)
    conv("conv_before_upsample.0", embed, num_feat)
    for name in ("conv_up1", "conv_up2", "conv_up3", "conv_hr"):
        conv(name, num_feat, num_feat)
    conv("conv_last", num_feat, 3)
    return t, params


def count(tensors, params):
    total = 0
    for k in params:
        n = 1
        for s in tensors[k]:
            n *= s
        total += n
    return total


def write(name, source, tensors, params):
    doc = {"source": source, "parameters": count(tensors, params), "buffers": sorted(set(tensors) - params),
           "tensors": tensors}
    (HERE / name).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    sw, sw_p = swinir("")
    write("difface_swinir_L.json", {
        "repository": "zsyOAOA/DifFace", "file": "models/swinir.py", "commit": DIFFACE_COMMIT,
        "checkpoint": "https://github.com/zsyOAOA/DifFace/releases/download/V1.0/swinir_restoration512_L1.pth",
        "config": "embed 180, depths [6]*8, heads [6]*8, window 8, mlp 2, sf 8, img_size 64, nearest+conv, 1conv",
    }, sw, sw_p)
    hd, hd_p = hdit("model.", [256, 512, 1024], [2, 2, 8], 64)
    sw, sw_p = swinir("mmse_model.")
    write("pmrf_hf_model_safetensors.json", {
        "repository": "ohayonguy/PMRF",
        "files": ["arch/hourglass/image_transformer_v2.py", "arch/swinir/swinir.py", "utils/create_arch.py",
                  "lightning_models/mmse_rectified_flow.py"],
        "commit": PMRF_COMMIT,
        "checkpoint": "hf://ohayonguy/PMRF_blind_face_image_restoration/model.safetensors",
        "config": "arch hdit_ImageNet256Sp4, mmse_model_arch swinir_L; other keys (fid., inception_score.) ignored",
    }, {**hd, **sw}, hd_p | sw_p)
