"""Imports a published project's files straight from its unpacked source, without installing it (gfpgan,
CodeFormer and basicsr import a basicsr that does not import with current torchvision): stub packages stand in
for the names those files import, and each file is executed under its published module name."""
from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path


class Registry:
    """Stands in for basicsr's ARCH_REGISTRY / METRIC_REGISTRY: `@REGISTRY.register()` leaves the object as is."""

    def register(self):
        return lambda obj: obj


def install_module(root: Path, name: str, rel: str | None = None, **attrs) -> types.ModuleType:
    """Registers `name` in sys.modules: the file `root / rel` executed as that module, or an empty package when
    `rel` is None; `attrs` are set before the file runs (the stubbed names it imports)."""
    if rel is None:
        mod = types.ModuleType(name)
        mod.__path__ = []
    else:
        spec = importlib.util.spec_from_file_location(name, root / rel)
        mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    mod.__dict__.update(attrs)
    if rel is not None:
        spec.loader.exec_module(mod)
    return mod
