"""Walk every command of the click tree: `--help` works, and a wrong value for each option is refused cleanly.

Commands are enumerated from `main`, so commands added later are walked too. "Cleanly" means: no traceback
(the exception, if any, is click's SystemExit), a non-zero exit for values of a checked type, and, when the
command refuses, no file created or changed under the working folder or the weight cache.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from lpmrf_bench.cli.main import main
from lpmrf_bench.imageio import write_png

PARAMETERS_NOT_WALKED = {"help"}


def commands(group: click.Group = main, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
    return found


LEAVES = [(path, cmd) for path, cmd in commands() if not isinstance(cmd, click.Group)]


def _snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    import numpy as np

    rng = np.random.default_rng(0)
    for sub in ("lq", "gt"):
        write_png(tmp_path / "pairs" / sub / "a.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    (tmp_path / "file.txt").write_text("not an image")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _valid_value(param: click.Parameter, root: Path) -> str:
    """A value that passes click's own checks, for parameters the walk is not testing right now."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, (click.IntRange, click.FloatRange)) or kind in (click.INT, click.FLOAT):
        return str(getattr(kind, "min", None) or 1)
    if isinstance(kind, click.Path):
        if not kind.exists:
            return str(root / f"new-{param.name}")
        return str(root / "file.txt") if not kind.dir_okay else str(root / "pairs")
    return "x"


def _wrong_value(param: click.Parameter, root: Path) -> tuple[str, bool]:
    """(a wrong value, whether click's type alone must refuse it)."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return "no-such-choice", True
    if isinstance(kind, click.IntRange) and kind.min is not None:
        return str(kind.min - 1), True
    if isinstance(kind, (click.IntRange, click.FloatRange)) or kind in (click.INT, click.FLOAT):
        return "not-a-number", True
    if isinstance(kind, click.Path):
        if kind.exists:
            return str(root / "no" / "such" / "path"), True
        if not kind.file_okay:
            return str(root / "file.txt"), False
        return str(root / "pairs"), False
    return "no-such-value,%", False


def _arguments(command: click.Command, root: Path, param: click.Parameter, wrong: str) -> list[str]:
    """Required parameters filled in declaration order with `wrong` for `param`, plus a tiny, fast configuration
    for `run` (never the embedded default) and `train` (its first recipe, `posterior-mean`: one step of the tiny
    SwinIR, no validation)."""
    args: list[str] = []
    for p in command.params:
        value = wrong if p is param else _valid_value(p, root) if p.required else None
        if value is None:
            continue
        args += [value] if isinstance(p, click.Argument) else [p.opts[0], value]
    if command.name == "run":
        args += ["--methods", "identity", "--datasets", str(root / "pairs"), "--no-progress", "--metrics", "psnr"]
    if command.name == "train":
        args += [f"--set={kv}" for kv in ("arch=swinir_tiny", "steps=1", "batch_size=1", "val_every=0", "progress=false")]
    return args


def _assert_clean(result, what: str) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{what}: {type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert "Traceback" not in result.output, f"{what}:\n{result.output}"


def test_the_walk_reaches_every_command():
    names = {" ".join(path) for path, _ in LEAVES}
    assert {"run", "restore", "list", "weights list", "weights fetch", "weights verify", "degrade", "data preview",
            "plot pd-tradeoff", "speedup"} <= names


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=lambda p: " ".join(p))
def test_help_of_every_command(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    _assert_clean(result, f"{' '.join(path)} --help")
    assert result.exit_code == 0 and "Usage:" in result.output


@pytest.mark.parametrize("path,command", LEAVES, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_a_wrong_value_for_every_option_is_refused_cleanly(path, command, workdir):
    runner = CliRunner()
    walked = 0
    for param in command.params:
        if param.name in PARAMETERS_NOT_WALKED or getattr(param, "is_flag", False):
            continue
        wrong, typed = _wrong_value(param, workdir)
        args = _arguments(command, workdir, param, wrong)
        before = _snapshot(workdir)
        result = runner.invoke(main, [*path, *args])
        what = f"{' '.join(path)} {' '.join(args)}"
        _assert_clean(result, what)
        if typed:
            assert result.exit_code == 2, f"{what}: exit {result.exit_code}\n{result.output}"
        if result.exit_code != 0:
            assert _snapshot(workdir) == before, f"{what} failed but changed files under {workdir}"
            assert len(result.output.strip().splitlines()) <= 12, f"{what}: not a short message\n{result.output}"
        walked += 1
    assert walked or not [p for p in command.params if p.name not in PARAMETERS_NOT_WALKED]


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch):
    """A bug (not an expected error) still ends in one line naming it; `--debug` re-raises it."""
    from lpmrf_bench.cli import listing

    def broken():
        raise RuntimeError("a bug\nsecond line")

    monkeypatch.setitem(listing.LISTINGS, "methods", broken)
    result = CliRunner().invoke(main, ["list", "methods"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "RuntimeError: a bug" in result.output and "second line" not in result.output and "--debug" in result.output
    debug = CliRunner().invoke(main, ["--debug", "list", "methods"])
    assert isinstance(debug.exception, RuntimeError)


HEAVY = ("torch", "numpy", "pandas", "matplotlib", "cv2", "scipy")


def _heavy_modules_after(args: list[str]) -> list[str]:
    """The HEAVY modules a fresh interpreter has imported after running the CLI with `args`."""
    code = ("import sys\nfrom lpmrf_bench.cli.main import main\n"
            f"try:\n    {args!r} and main({args!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    return [m for m in out.stdout.strip().splitlines()[-1].removeprefix("HEAVY:").split(",") if m]


@pytest.mark.parametrize("args", [[], ["list", "methods"], ["weights", "list"], ["weights", "verify"]],
                         ids=lambda a: " ".join(a) or "import")
def test_startup_imports_no_heavy_module(args):
    """`--help`, `list methods` and `weights list|verify` must not pay for torch, numpy, pandas or matplotlib."""
    assert _heavy_modules_after(args) == []


@pytest.mark.slow
def test_list_datasets_does_not_import_torch():
    """Listing the datasets renders faces' metadata only; torch (the slowest import by far) stays unloaded."""
    assert "torch" not in _heavy_modules_after(["list", "datasets"])
