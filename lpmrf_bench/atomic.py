"""Writing a file so that readers see the old file or the whole new one, never a half-written one.

Every file the project writes (Parquet parts, manifests, PNGs, checkpoints, downloads) goes through
`atomic_write`: write to a hidden temporary name beside the target, then rename. A killed process leaves at
most a `.<name>.<id>.tmp` file, which no reader globs for and `open_run_dir` sweeps away.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` to produce the content, then rename `tmp` to `path`; returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
