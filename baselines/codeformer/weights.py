"""CodeFormer's published weight file, registered without importing torch (`list methods` stays fast)."""
from lpmrf_bench.weights import WeightFile, register

CODEFORMER_PTH = register(WeightFile(
    path="codeformer/codeformer.pth",
    source="https://github.com/sczhou/CodeFormer/releases/download/v0.1.0/codeformer.pth",
    licence="NTU S-Lab License 1.0 (non-commercial use only)",
    description="CodeFormer v0.1.0 (Zhou et al., NeurIPS 2022): VQGAN + code-prediction transformer, params_ema",
))
