"""A `lpmrf-bench` entry point for tests that need a separate process (torchrun ranks, SIGKILL).

It registers two test restorers, then runs the real CLI. Environment switches:
  LPMRF_TEST_FLUSH_SECONDS   how often the engine writes parts (default: the engine's own)
  LPMRF_TEST_KILL_AT_REPLACE kill this process with SIGKILL at the N-th atomic rename, after the temporary
                             file is complete and before it is renamed (the window the store must survive)
  LPMRF_TEST_SLEEP           seconds the slow restorer sleeps per batch
"""
from __future__ import annotations

import os
import signal
import time

import torch

from lpmrf_bench import engine, store
from lpmrf_bench.cli.main import main
from lpmrf_bench.restorers import RESTORERS, Knob, RestorerSpec


def _noisy(weights, device):
    def restore(batch, knobs):
        time.sleep(float(os.environ.get("LPMRF_TEST_SLEEP", "0")))
        noise = batch.noise(batch.lq.shape[1:], "test-noise")
        return (batch.lq + knobs["sigma"] * noise).clamp(0, 1)
    return restore


NOISY = RestorerSpec(name="test-noisy", load=_noisy, knobs=(Knob("sigma", float, 0.05, pd=True),), stochastic=True)

if __name__ == "__main__":
    RESTORERS.add("test-noisy", "__main__:NOISY")
    if "LPMRF_TEST_FLUSH_SECONDS" in os.environ:
        engine.FLUSH_SECONDS = float(os.environ["LPMRF_TEST_FLUSH_SECONDS"])
    kill_at = int(os.environ.get("LPMRF_TEST_KILL_AT_REPLACE", "0"))
    if kill_at:
        real_replace, calls = os.replace, [0]

        def replace_then_maybe_die(src, dst):
            calls[0] += 1
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            real_replace(src, dst)

        store.os.replace = replace_then_maybe_die
    torch.set_num_threads(1)
    main()
