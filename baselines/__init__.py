"""`lpmrf_baselines`: adapters for other restorers, registered through the `lpmrf_bench.restorers` entry points.

Each adapter is a `lpmrf_bench.restorers.RestorerSpec`; none is wrapped yet (CodeFormer, GFPGAN,
RestoreFormer++ are planned). Until then, any method's published outputs can be scored with `outputs:DIR`.
"""
