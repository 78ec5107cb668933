"""GFPGAN v1.3/v1.4 "clean" (TencentARC/GFPGAN) behind the common restorer interface: `network` is the
architecture (key-compatible with the released files), `restorer` the published aligned-face inference."""
from lpmrf_baselines.gfpgan.restorer import GFPGAN as SPEC

__all__ = ["SPEC"]
