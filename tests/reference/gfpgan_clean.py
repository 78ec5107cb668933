"""Reference outputs of GFPGAN's own "clean" network, and the key -> shape manifest of the released layout.

gfpgan 1.3.8 imports basicsr, which does not import with current torchvision, so this loads only
`gfpgan/archs/stylegan2_clean_arch.py` and `gfpgan/archs/gfpganv1_clean_arch.py` straight from the unpacked wheel,
with stubs for the two basicsr names they use (ARCH_REGISTRY, and default_init_weights, which only initialises
weights that are overwritten here). It writes:
- tests/reference/gfpgan_clean.safetensors: the official network's output (float64) for a tiny configuration
  (`TINY`), seeded random non-zero weights and inputs, and explicit decoder noise: the published forward draws
  fresh noise inside each StyleConv (`randomize_noise=True`); here the same tensors the test builds are passed
  to the decoder's `noise` argument, so both networks see identical noise at identical injection points.
- tests/manifests/gfpgan_v1_clean_512.json: key -> shape of `GFPGANv1Clean` as `GFPGANer(arch="clean",
  channel_multiplier=2)` builds it for GFPGANv1.3.pth / GFPGANv1.4.pth (built on the meta device).
Needs torch and safetensors only. Regenerate with:

    pip download --no-deps gfpgan==1.3.8 -d /tmp/gfpgan
    python -m zipfile -e /tmp/gfpgan/gfpgan-1.3.8-py3-none-any.whl /tmp/gfpgan/whl
    python tests/reference/gfpgan_clean.py /tmp/gfpgan/whl
"""
from __future__ import annotations

import functools
import json
import math
import sys
import zlib
from pathlib import Path

import torch
from safetensors.torch import save_file

from _official_source import Registry, install_module

HERE = Path(__file__).parent
# the released configuration (gfpgan/utils.py GFPGANer, arch "clean"); TINY only shrinks the sizes
RELEASED = dict(out_size=512, num_style_feat=512, channel_multiplier=2, num_mlp=8, narrow=1)
TINY = dict(out_size=32, num_style_feat=16, channel_multiplier=2, num_mlp=2, narrow=1 / 16)
FIXED = dict(decoder_load_path=None, fix_decoder=False, input_is_latent=True, different_w=True, sft_half=True)
BATCH = 2
SOURCE = {
    "repository": "TencentARC/GFPGAN",
    "files": {"gfpgan/archs/gfpganv1_clean_arch.py": "be73d6d9a4d95e6a9684163a5e42bfda1990714e",
              "gfpgan/archs/stylegan2_clean_arch.py": "996d1e3df972438bfffa87993f0f21d242125bdf"},
    "package": "gfpgan 1.3.8 wheel (PyPI), same two files",
    "constructor": "GFPGANv1Clean(out_size=512, num_style_feat=512, channel_multiplier=2, decoder_load_path=None, "
                   "fix_decoder=False, num_mlp=8, input_is_latent=True, different_w=True, narrow=1, sft_half=True) "
                   "as in gfpgan/utils.py GFPGANer(arch='clean')",
    "checkpoints": ["https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.3.pth",
                    "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0/GFPGANv1.4.pth"],
}


def random_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Non-zero float64 values per key, seeded by the key's name (independent of order).

    Weights get std 0.5/sqrt(fan-in) (modulated conv weights [1, out, in, k, k] count in*k*k) and vectors
    (biases, noise strengths) 0.1 + 0.2 N(0, 1); the SFT heads' last convs are 10x smaller and the scale head's
    bias is centred on 1, as in a trained network, so the SFT products keep the decoder's output of order one.
    """
    state = {}
    for key, shape in shapes.items():
        gen = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        values = torch.randn(shape, generator=gen, dtype=torch.float64)
        if len(shape) >= 2 and max(shape[1:]) > 1:
            fan_in = math.prod(shape[2:] if len(shape) == 5 else shape[1:])
            state[key] = values * (0.5 / math.sqrt(fan_in))
        else:
            state[key] = values * 0.2 + 0.1
        if key.startswith(("condition_scale.", "condition_shift.")) and ".2." in key:
            state[key] = state[key] * 0.1 + (1.0 if key.startswith("condition_scale.") and key.endswith("bias") else 0)
    return state


def reference_inputs(noise_shapes: list[tuple[int, int, int]]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Images in [-1, 1] and one [B, 1, h, w] noise tensor per style conv (4x4, then two per resolution)."""
    size = noise_shapes[-1][-1]
    x = torch.rand(BATCH, 3, size, size, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    gen = torch.Generator().manual_seed(2)
    return x, [torch.randn(BATCH, *shape, generator=gen, dtype=torch.float64) for shape in noise_shapes]


def load_official(root: Path):
    module = functools.partial(install_module, root)
    for name in ("basicsr", "basicsr.utils", "basicsr.archs", "gfpgan", "gfpgan.archs"):
        module(name)
    module("basicsr.utils.registry", ARCH_REGISTRY=Registry())
    module("basicsr.archs.arch_util", default_init_weights=lambda *args, **kwargs: None)
    module("gfpgan.archs.stylegan2_clean_arch", "gfpgan/archs/stylegan2_clean_arch.py")
    return module("gfpgan.archs.gfpganv1_clean_arch", "gfpgan/archs/gfpganv1_clean_arch.py").GFPGANv1Clean


def manifest(cls) -> dict:
    with torch.device("meta"):
        model = cls(**RELEASED, **FIXED)
    params = {k for k, _ in model.named_parameters()}
    tensors = {k: list(v.shape) for k, v in model.state_dict().items()}
    return {"source": SOURCE, "parameters": sum(p.numel() for p in model.parameters()),
            "buffers": [k for k in tensors if k not in params], "tensors": tensors}


def main(root: str) -> None:
    cls = load_official(Path(root))
    (HERE.parent / "manifests" / "gfpgan_v1_clean_512.json").write_text(json.dumps(manifest(cls), indent=1) + "\n")

    model = cls(**TINY, **FIXED).double().eval()
    model.load_state_dict(random_state({k: tuple(v.shape) for k, v in model.state_dict().items()}), strict=True)
    decoder = model.stylegan_decoder
    shapes = [tuple(getattr(decoder.noises, f"noise{i}").shape[1:]) for i in range(decoder.num_layers)]
    x, noise = reference_inputs(shapes)
    decoder.forward = functools.partial(decoder.forward, noise=noise)  # the tensors randomize_noise would draw
    with torch.no_grad():
        out = model(x, return_rgb=False, weight=0.5)[0]  # as GFPGANer.enhance calls it
    meta = {"source": json.dumps(SOURCE), "config": json.dumps(TINY), "torch": torch.__version__,
            "script": "tests/reference/gfpgan_clean.py"}
    save_file({"output": out.contiguous()}, str(HERE / "gfpgan_clean.safetensors"), metadata=meta)
    print(f"output {tuple(out.shape)}, mean {out.mean().item():.6f}, std {out.std().item():.6f}")


if __name__ == "__main__":
    main(sys.argv[1])
