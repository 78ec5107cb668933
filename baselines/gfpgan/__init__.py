"""GFPGAN v1.3/v1.4 "clean" (TencentARC/GFPGAN) behind the common restorer interface: `network` is the
architecture (key-compatible with the released files), `restorer` the published aligned-face inference, `weights`
the release files. Importing this package (as `list methods` does) loads no torch."""
from lpmrf_baselines.gfpgan.weights import DEFAULT_WEIGHTS, WEIGHTS_TERMS, WEIGHT_SETS
from lpmrf_bench.restorers.base import PRECISION, RestorerSpec, lazy_load
from lpmrf_bench.restorers.builtin import PUBLISHED_SIZE

SPEC = RestorerSpec(
    name="gfpgan",
    load=lazy_load("lpmrf_baselines.gfpgan.restorer:load_gfpgan_restorer"),
    knobs=(PRECISION,),
    weight_sets={name: (wf,) for name, wf in WEIGHT_SETS.items()},
    default_weights=DEFAULT_WEIGHTS,
    description="GFPGAN (Wang et al., CVPR 2021), clean v1.3/v1.4: U-Net + SFT-conditioned StyleGAN2 decoder; "
                "aligned 512 faces",
    licence=f"Apache-2.0 (GFPGAN code); weights {WEIGHTS_TERMS}",
    input_size=PUBLISHED_SIZE,
    stochastic=True,  # fresh decoder noise per call, as published
    load_random=lazy_load("lpmrf_baselines.gfpgan.restorer:random_gfpgan_restorer"),
    explicit_weights=True,  # a .pth in the release form
)

__all__ = ["SPEC"]
