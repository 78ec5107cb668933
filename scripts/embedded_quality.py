"""The issue-14 quality bar of the embedded models, read from a run of the embedded default with a steps sweep.

    python scripts/embedded_quality.py RUN_DIR [--steps 25]

Prints PSNR and fd_mobilenet (with their 95% intervals) of identity, posterior-mean and the flows at K = steps,
each flow's fd_mobilenet minus posterior-mean's with a paired bootstrap interval (same images resampled for
both), and whether each point of the bar holds. It prints what it measures; it changes nothing.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from lpmrf_bench.metrics.extractors import EXTRACTORS
from lpmrf_bench.metrics.setlevel import SET_METRICS
from lpmrf_bench.set_scoring import compare_sets

PSNR_GAIN, PSNR_DROP = 3.0, 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    sets = pd.read_parquet(args.run_dir / "sets.parquet")
    steps = sets["knob_steps"] if "knob_steps" in sets else pd.Series(pd.NA, index=sets.index)
    pick = {m: sets[(sets["method"] == m) & (steps.isna() | (steps == args.steps))]
            for m in ("identity", "posterior-mean", "pmrf", "latent-pmrf")}
    config = {m: rows["config_id"].iloc[0] for m, rows in pick.items()}

    def value(method: str, metric: str) -> pd.Series:
        return pick[method][pick[method]["metric"] == metric].iloc[0]

    for method in pick:
        line = "  ".join(f"{metric} {value(method, metric)['value']:.3f} [{value(method, metric)['ci_low']:.3f}, "
                         f"{value(method, metric)['ci_high']:.3f}]" for metric in ("psnr", "fd_mobilenet"))
        print(f"{method:<15} {line}")
    row = value("posterior-mean", "psnr")
    gain = row["value"] - value("identity", "psnr")["value"]
    verdict = "met" if gain >= PSNR_GAIN else "NOT met"
    print(f"posterior-mean PSNR - identity PSNR = {gain:.2f} dB (bar: >= {PSNR_GAIN}): {verdict}")
    extract = lambda name: EXTRACTORS.get(name).build(torch.device("cpu"), None)  # noqa: E731
    for flow in ("pmrf", "latent-pmrf"):
        fd_row = value("posterior-mean", "fd_mobilenet")
        diff, _ = compare_sets(args.run_dir, config[flow], config["posterior-mean"], SET_METRICS["fd_mobilenet"],
                            fd_row["dataset"], fd_row["split"], fd_row["reference"], extract)
        lower = diff.ci_high < 0
        print(f"{flow} K={args.steps}: fd_mobilenet - posterior-mean's = {diff.value:.2f} "
              f"[{diff.ci_low:.2f}, {diff.ci_high:.2f}] (paired, n={diff.n}; bar: interval below 0): "
              f"{'met' if lower else 'NOT met'}")
        drop = row["value"] - value(flow, "psnr")["value"]
        print(f"{flow} K={args.steps}: PSNR {drop:.2f} dB below posterior-mean (bar: <= {PSNR_DROP}): "
              f"{'met' if drop <= PSNR_DROP else 'NOT met'}")


if __name__ == "__main__":
    main()
