"""The built-in methods' specs: names, knobs, weight sets, licences; metadata only.

`list methods` and argument checking read these without importing torch or any network: each `load` imports
the module that builds the networks (`restorers/pmrf.py`, `restorers/latent_pmrf.py`) on first call.
"""
from __future__ import annotations

import math

from lpmrf_bench.embedded_weights import weight_sets
from lpmrf_bench.published import DIFFACE_SWINIR, PMRF_HF_CONFIG, PMRF_HF_WEIGHTS, PUBLISHED
from lpmrf_bench.restorers.base import PRECISION, Knob, RestorerSpec, lazy_load

PUBLISHED_SIZE = 512  # SwinIR's stored shift masks and the HDiT were built and trained for 512x512 crops
LATENT_SAMPLE = ("sample", "mode")
SCHEDULES = ("uniform", "flow-match")  # models.sampler.SCHEDULES (a test checks they agree)
DEFAULT_VAE = "sim-vae-c32"

PMRF = RestorerSpec(
    name="pmrf",
    load=lazy_load("lpmrf_bench.restorers.pmrf:load_pmrf_restorer"),
    knobs=(
        Knob("steps", int, 25, "Euler steps K of the flow (the perception-distortion knob)", pd=True, bounds=(1, math.inf)),
        Knob("noise_std", float, 0.1, "std of the Gaussian noise added to the posterior mean (pixel scale)",
             bounds=(0.0, math.inf)),
        PRECISION,
    ),
    weight_sets={"official": (PMRF_HF_CONFIG, PMRF_HF_WEIGHTS), **weight_sets("pmrf")},
    default_weights="official",
    description="Posterior-Mean Rectified Flow (Ohayon et al., ICLR 2025): SwinIR-L posterior mean + HDiT flow",
    licence="MIT (PMRF); the posterior-mean weights inside are DifFace's (NTU S-Lab License 1.0)",
    input_size=PUBLISHED_SIZE,
    stochastic=True,
    explicit_weights=True,
)

POSTERIOR_MEAN = RestorerSpec(
    name="posterior-mean",
    load=lazy_load("lpmrf_bench.restorers.pmrf:load_posterior_mean_restorer"),
    knobs=(PRECISION,),
    weight_sets={"official": (DIFFACE_SWINIR,), **weight_sets("posterior-mean")},
    default_weights="official",
    description="PMRF's posterior-mean predictor alone: clip(SwinIR-L(y), 0, 1), DifFace's L1 weights",
    licence="NTU S-Lab License 1.0 (DifFace weights)",
    input_size=PUBLISHED_SIZE,
    explicit_weights=True,
)

LATENT_PMRF = RestorerSpec(
    name="latent-pmrf",
    load=lazy_load("lpmrf_bench.restorers.latent_pmrf:load_latent_pmrf_restorer"),
    knobs=(
        Knob("steps", int, 25, "Euler steps K of the latent flow (the perception-distortion knob)", pd=True,
             bounds=(1, math.inf)),
        Knob("noise_std", float, 0.1, "std of the Gaussian noise added to the posterior mean's latent",
             bounds=(0.0, math.inf)),
        Knob("latent_sample", str, "sample", "encode the posterior mean by a posterior draw or its mode",
             choices=LATENT_SAMPLE),
        Knob("schedule", str, "flow-match", "time grid: diffusers' FlowMatchEulerDiscreteScheduler (as published) "
             "or uniform i/K", choices=SCHEDULES),
        PRECISION,
    ),
    description="Latent-PMRF (Luo et al., 2025): posterior mean -> Sim-VAE latent -> rectified flow -> decode; "
                "flow weights never published (train them)",
    licence="Apache-2.0 (our flow); Sim-VAE and posterior-mean weights under their own terms",
    weight_sets=weight_sets("latent-pmrf"),
    default_weights="embedded" if weight_sets("latent-pmrf") else None,
    input_size=512,
    stochastic=True,
    explicit_weights=True,
)

VAE_RECON = RestorerSpec(
    name="vae-recon",
    load=lazy_load("lpmrf_bench.restorers.latent_pmrf:load_vae_recon_restorer"),
    knobs=(Knob("latent_sample", str, "mode", "decode the posterior mode or a posterior draw", choices=LATENT_SAMPLE),),
    weight_sets={"official": (PUBLISHED[DEFAULT_VAE].config, PUBLISHED[DEFAULT_VAE].weights),
                 **weight_sets("vae-recon")},
    default_weights="official",
    description="Sim-VAE f8c32 encode -> decode of the GT (else the LQ): Latent-PMRF's fidelity ceiling",
    licence="see the Sim-VAE model card",
    stochastic=True,  # with latent_sample=sample
    explicit_weights=True,
)
