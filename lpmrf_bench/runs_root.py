"""Where commands put run folders when no --out is given, and which one the reading commands take when given none.

`run` and `train` write to `runs/<hash>` under the working directory, so `lpmrf-bench run` followed by a bare
`lpmrf-bench plot pd-tradeoff` or `lpmrf-bench report` reads the run just made.
"""
from __future__ import annotations

from pathlib import Path

RUNS_ROOT = Path("runs")


def newest_evaluation_run(root: Path = RUNS_ROOT) -> Path:
    """The folder under `root` holding scores (manifest.json and sets.parquet) that a command wrote to last."""
    runs = [manifest.parent for manifest in root.glob("*/manifest.json") if (manifest.parent / "sets.parquet").exists()]
    if not runs:
        raise FileNotFoundError(f"no run folder with scores under {root}/ (one holding manifest.json and sets.parquet): "
                                "run `lpmrf-bench run` first, or name the run folders")
    return max(runs, key=lambda run: max((run / name).stat().st_mtime_ns for name in ("manifest.json", "sets.parquet")))
