"""Packaging: every subpackage is listed (the explicit list exists because `baselines/` installs under another name)."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "lpmrf_bench").rglob("__init__.py")}
    baselines = {".".join(("lpmrf_baselines",) + p.parent.relative_to(ROOT / "baselines").parts).rstrip(".")
                 for p in (ROOT / "baselines").rglob("__init__.py")}
    assert set(config["packages"]) == on_disk | baselines
    assert config["package-dir"]["lpmrf_baselines"] == "baselines"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/python -m pytest -q"
    assert readme.count(command) == 1
    assert command in (ROOT / ".ci" / "run").read_text()
