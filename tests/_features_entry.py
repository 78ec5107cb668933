"""`_entry.py` (test restorers, SIGKILL switch) with random MobileNetV2 weights accepted by the resolver.

  LPMRF_TEST_MOBILENET_SHA256  the sha256 of the random weights placed in the weight cache
"""
from __future__ import annotations

import dataclasses
import os
import runpy
from pathlib import Path

from lpmrf_bench.metrics import extractors

if __name__ == "__main__":
    extractors.MOBILENET_V2_WEIGHTS = dataclasses.replace(
        extractors.MOBILENET_V2_WEIGHTS, sha256=os.environ["LPMRF_TEST_MOBILENET_SHA256"])
    runpy.run_path(str(Path(__file__).with_name("_entry.py")), run_name="__main__")
