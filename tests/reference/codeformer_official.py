"""Reference outputs of the official CodeFormer network on seeded random weights, for tests/test_codeformer.py.

The official code imports basicsr, which does not import with current torchvision. This loads the two arch files
(`basicsr/archs/vqgan_arch.py`, `codeformer_arch.py`) unchanged from the `codeformer-pip` 0.0.4 sdist on PyPI,
which ships them with only the import paths rewritten (checked against sczhou/CodeFormer @ 63e66f05 and the
parts used at inference against aeb20c80 / 85008306), with a stub logger and registry. Then:

1. the full-size network is built on the meta device and its `state_dict()` keys, order and shapes are checked
   against tests/manifests/codeformer.json (the script stops if they differ);
2. a tiny configuration runs the official forward. CodeFormer hard-codes its sizes in `__init__`, so the base
   `VQAutoEncoder.__init__` receives the tiny (img_size, nf, ch_mult) and, after construction, the size tables
   (`channels`, `fuse_encoder_block`, `fuse_generator_block`, written out below for the tiny block lists) are
   set and `fuse_convs_dict` is rebuilt with the official `Fuse_sft_block`. The forward is untouched; the latent
   stays 16x16x256, as that forward requires.

Regenerate with:

    pip download codeformer-pip==0.0.4 --no-deps -d /tmp/cf
    tar xzf /tmp/cf/codeformer-pip-0.0.4.tar.gz -C /tmp/cf
    python tests/reference/codeformer_official.py /tmp/cf/codeformer-pip-0.0.4
"""
from __future__ import annotations

import functools
import json
import logging
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from _codeformer_tiny import REFERENCE_CASES, REFERENCE_SEED, random_state, reference_input  # noqa: E402
from _official_source import Registry, install_module  # noqa: E402

# The tiny configuration (tests: CONFIGS["codeformer_tiny"]): 32x32 in, channels 32/64, attention at 16.
TINY = dict(img_size=32, nf=32, ch_mult=[1, 2], dim_embd=64, n_head=4, n_layers=2, codebook_size=64,
            connect_list=["16", "32"])
# encoder blocks: 0 conv | 1 res 2 res 3 down | 4 res 5 attn 6 res 7 attn | 8 res 9 attn 10 res 11 norm 12 conv;
# generator: 0 conv 1 res 2 attn 3 res | 4 res 5 attn 6 res 7 attn 8 up | 9 res 10 res | 11 norm 12 conv.
# Fuse points follow the published comments (encoder: a level's second residual block; generator: its first,
# and before the last attention layer at 16).
TINY_TABLES = dict(channels={"16": 64, "32": 32},
                   fuse_encoder_block={"32": 2, "16": 6},
                   fuse_generator_block={"16": 6, "32": 9})
OUT = TESTS / "reference" / "codeformer_official_tiny.safetensors"


def load_official(root: Path) -> types.ModuleType:
    module = functools.partial(install_module, root)
    module("codeformer")
    module("codeformer.basicsr")
    module("codeformer.basicsr.utils", get_root_logger=logging.getLogger)
    module("codeformer.basicsr.utils.registry", ARCH_REGISTRY=Registry())
    module("codeformer.basicsr.archs")
    module("codeformer.basicsr.archs.vqgan_arch", "codeformer/basicsr/archs/vqgan_arch.py")
    return module("codeformer.basicsr.archs.codeformer_arch", "codeformer/basicsr/archs/codeformer_arch.py")


def check_manifest(official: types.ModuleType) -> None:
    manifest = json.loads((TESTS / "manifests" / "codeformer.json").read_text())["tensors"]
    with torch.device("meta"):
        net = official.CodeFormer(dim_embd=512, codebook_size=1024, n_head=8, n_layers=9,
                                  connect_list=["32", "64", "128", "256"])
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    if list(got.items()) != list(manifest.items()):
        differ = [k for k in dict.fromkeys([*got, *manifest]) if got.get(k) != manifest.get(k)]
        sys.exit(f"official state_dict differs from the manifest (order or shapes), e.g. at {differ[:10]}")
    print(f"manifest ok: {len(got)} tensors match the official state_dict", file=sys.stderr)


def tiny_official(official: types.ModuleType) -> torch.nn.Module:
    base_init = official.VQAutoEncoder.__init__

    def tiny_init(self, img_size, nf, ch_mult, *args):
        base_init(self, TINY["img_size"], TINY["nf"], TINY["ch_mult"], *args)

    official.VQAutoEncoder.__init__ = tiny_init
    try:
        net = official.CodeFormer(dim_embd=TINY["dim_embd"], n_head=TINY["n_head"], n_layers=TINY["n_layers"],
                                  codebook_size=TINY["codebook_size"], connect_list=TINY["connect_list"])
    finally:
        official.VQAutoEncoder.__init__ = base_init
    for name, table in TINY_TABLES.items():
        setattr(net, name, table)
    net.fuse_convs_dict = torch.nn.ModuleDict(
        {s: official.Fuse_sft_block(net.channels[s], net.channels[s]) for s in TINY["connect_list"]})
    return net


def main(root: str) -> None:
    official = load_official(Path(root))
    check_manifest(official)
    net = tiny_official(official).eval()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    net.load_state_dict(random_state(shapes, REFERENCE_SEED), strict=True)
    x = reference_input()
    tensors = {}
    with torch.no_grad():
        for w, adain in REFERENCE_CASES:
            out, logits, _ = net(x, w=w, adain=adain)
            tensors[f"out/w={w}/adain={adain}"] = out.contiguous()
            tensors[f"index/w={w}/adain={adain}"] = logits.argmax(dim=2).contiguous()
    save_file(tensors, str(OUT), metadata={
        "source": "sczhou/CodeFormer basicsr/archs/{codeformer,vqgan}_arch.py via the codeformer-pip 0.0.4 sdist",
        "script": "tests/reference/codeformer_official.py", "torch": torch.__version__,
        "config": json.dumps(TINY), "keys": json.dumps(list(shapes))})
    print(f"wrote {OUT.relative_to(TESTS.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
