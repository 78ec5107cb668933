"""`lpmrf-bench`: the command-line entry point; each command group lives in its own module.

Command modules import torch, numpy, pandas, the models and metrics inside their functions, so `--help`
and `list` answer without loading them (`benchmarks/startup.py` measures it).
"""
from __future__ import annotations

import logging

import click

from lpmrf_bench.cli.common import DEBUG_KEY, CleanGroup
from lpmrf_bench.cli.data import data_group, degrade_command
from lpmrf_bench.cli.listing import list_command
from lpmrf_bench.cli.plot import plot_group
from lpmrf_bench.cli.report import report_command
from lpmrf_bench.cli.run import restore_command, run_command
from lpmrf_bench.cli.sets import compare_command, ref_stats_command, rescore_command
from lpmrf_bench.cli.speedup import speedup_command
from lpmrf_bench.cli.train import train_command
from lpmrf_bench.cli.weights import weights_group
from lpmrf_bench.cpu_allocator import retain_freed_memory


@click.group(cls=CleanGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option("--debug", is_flag=True, envvar="LPMRF_BENCH_DEBUG",
              help="Show the full traceback of an error (env LPMRF_BENCH_DEBUG=1).")
@click.pass_context
def main(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Benchmark perceptual face restorers (PMRF, Latent-PMRF, baselines) the way the literature does."""
    ctx.meta[DEBUG_KEY] = debug
    retain_freed_memory()  # CPU inference and training run faster; see lpmrf_bench/cpu_allocator.py
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)


main.add_command(run_command)
main.add_command(restore_command)
main.add_command(list_command)
main.add_command(weights_group)
main.add_command(degrade_command)
main.add_command(data_group)
main.add_command(plot_group)
main.add_command(speedup_command)
main.add_command(report_command)
main.add_command(train_command)
main.add_command(rescore_command)
main.add_command(ref_stats_command)
main.add_command(compare_command)
