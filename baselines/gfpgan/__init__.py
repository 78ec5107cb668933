"""GFPGAN v1.3/v1.4 "clean" (TencentARC/GFPGAN) behind the common restorer interface. Work in progress: no SPEC yet."""
