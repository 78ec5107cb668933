"""GFPGAN's published weight files (two versions of one method), registered without importing torch."""
from lpmrf_bench.weights import WeightFile, register

RELEASE = "https://github.com/TencentARC/GFPGAN/releases/download/v1.3.0"
WEIGHTS_TERMS = "as published with the TencentARC/GFPGAN release"
WEIGHT_SETS = {
    version: register(WeightFile(
        path=f"gfpgan/GFPGANv{version[1:]}.pth",
        source=f"{RELEASE}/GFPGANv{version[1:]}.pth",
        licence=WEIGHTS_TERMS,
        description=f"GFPGAN {version} (clean architecture, params_ema)",
    ))
    for version in ("v1.4", "v1.3")
}
DEFAULT_WEIGHTS = "v1.4"
