"""How long the CLI takes to answer the commands that should be instant, each in a fresh process.

    python benchmarks/startup.py             # median of 5 runs of each command
    python benchmarks/startup.py --runs 9

Targets (2 CPU cores): `--help` under 1 s, `list methods` under 1.5 s. Each command runs as a new
`python -m lpmrf_bench` process, as a user's shell would start it; the wall time includes Python's own start-up
and is printed beside the 1-minute load average, since a busy machine stretches every figure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["list", "methods"], ["list", "datasets"], ["weights", "list"], ["run", "--help"],
            ["list", "metrics"])


def wall_seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "LPMRF_BENCH_OFFLINE": "1"})
    return time.perf_counter() - start


def median_seconds(argv: list[str], runs: int) -> tuple[float, float, float]:
    times = [wall_seconds(argv) for _ in range(runs)]
    return statistics.median(times), min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="Runs per command; the median is printed.")
    args = parser.parse_args()
    print(f"{'python -c pass':<28} median {median_seconds([sys.executable, '-c', 'pass'], args.runs)[0]:.2f} s "
          "(the interpreter alone)")
    for command in COMMANDS:
        median, low, high = median_seconds([sys.executable, "-m", "lpmrf_bench", *command], args.runs)
        print(f"lpmrf-bench {' '.join(command):<16} median {median:.2f} s  (min {low:.2f}, max {high:.2f})")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
