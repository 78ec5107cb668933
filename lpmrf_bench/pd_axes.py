"""The metrics a perception-distortion chart puts on its axes unless told otherwise.

A module of its own (no imports) so the command-line help can list them without loading matplotlib.
"""
from __future__ import annotations

DISTORTION_DEFAULT = "psnr"
PERCEPTION_PREFERENCE = ("fid", "kid", "fd_mobilenet", "kd_mobilenet", "niqe", "musiq", "clipiqa", "lpips")
PERCEPTION_HELP = f"the first of {', '.join(PERCEPTION_PREFERENCE)} in the runs"
