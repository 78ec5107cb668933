"""CodeFormer (Zhou et al., NeurIPS 2022; sczhou/CodeFormer) behind the common restorer interface.

Registered as `codeformer` through this package's `lpmrf_bench.restorers` entry point. The knob `fidelity` is
the published w in [0, 1] (0: the codebook's face, most perceptual; 1: closest to the input) and traces the
perception-distortion curve. Inputs are aligned 512x512 faces; deterministic (no random draws).
"""
from lpmrf_baselines.codeformer.weights import CODEFORMER_PTH
from lpmrf_bench.restorers.base import PRECISION, Knob, RestorerSpec, lazy_load

SPEC = RestorerSpec(
    name="codeformer",
    load=lazy_load("lpmrf_baselines.codeformer.loading:load_restorer"),
    knobs=(
        Knob("fidelity", float, 0.5, "fidelity weight w: 0 = codebook face (perception), 1 = closest to the input",
             pd=True, bounds=(0.0, 1.0)),
        PRECISION,
    ),
    weight_sets={"official": (CODEFORMER_PTH,)},
    default_weights="official",
    description="CodeFormer (Zhou et al., NeurIPS 2022): VQGAN codebook lookup by a transformer + fidelity-weighted "
                "feature fusion",
    licence="NTU S-Lab License 1.0 (non-commercial)",
    input_size=512,
    load_random=lazy_load("lpmrf_baselines.codeformer.loading:random_restorer"),
    explicit_weights=True,  # a .pth in the release form, or our checkpoint folder
)
