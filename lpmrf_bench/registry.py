"""A lazy name -> object registry with plug-in discovery and "did you mean" errors.

Entries are registered as `"module:attribute"` strings and imported on first use, so a broken or
missing optional backend only affects its own entry: `get` raises `UnavailableError` with the reason,
`available` lists it as unavailable, and every other entry keeps working.
"""
from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class UnavailableError(RuntimeError):
    """The entry exists but cannot be loaded here (missing optional package, broken plug-in)."""


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, T] = {}
        self._errors: dict[str, str] = {}
        self._discovered = entry_point_group is None

    def add(self, name: str, target: str) -> None:
        """Register `name` as the object at `target` ("package.module:attribute")."""
        if name in self._targets and self._targets[name] != target:
            raise ValueError(f"{self.kind} {name!r} is registered twice: {self._targets[name]} and {target}")
        self._targets[name] = target

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._targets:
                self._targets[ep.name] = ep.value

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._targets)

    def __contains__(self, name: str) -> bool:
        self._discover()
        return name in self._targets

    def get(self, name: str) -> T:
        self._discover()
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._targets:
            close = difflib.get_close_matches(name, self._targets, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(self.names())}"
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint}")
        if name in self._errors:
            raise UnavailableError(self._errors[name])
        module_name, _, attr = self._targets[name].partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except Exception as exc:  # any failure of a backend stays contained in its entry
            self._errors[name] = f"{self.kind} {name!r} is unavailable: {type(exc).__name__}: {exc}"
            raise UnavailableError(self._errors[name]) from exc
        self._loaded[name] = obj
        return obj

    def available(self) -> Iterator[tuple[str, T | None, str | None]]:
        """Yield (name, object or None, reason it is unavailable or None) for every entry."""
        for name in self.names():
            try:
                yield name, self.get(name), None
            except UnavailableError as exc:
                yield name, None, str(exc)
