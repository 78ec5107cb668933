"""Lazy registries: unknown names suggest, broken backends stay contained, plug-ins are discovered."""
from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest

from lpmrf_bench import registry as R


def test_unknown_name_suggests_close_match():
    reg: R.Registry[int] = R.Registry("method")
    reg.add("posterior-mean", "math:pi")
    with pytest.raises(R.UnknownNameError, match="did you mean posterior-mean"):
        reg.get("posterior_mean")


def test_broken_entry_is_unavailable_and_others_work(monkeypatch):
    broken = types.ModuleType("broken_backend_for_test")
    monkeypatch.setitem(sys.modules, "broken_backend_for_test", broken)
    reg: R.Registry[float] = R.Registry("method")
    reg.add("good", "math:pi")
    reg.add("bad", "broken_backend_for_test:SPEC")
    reg.add("missing", "no_such_module_anywhere:SPEC")
    listing = {name: (obj, reason) for name, obj, reason in reg.available()}
    assert listing["good"][0] == pytest.approx(3.14159, abs=1e-5)
    assert "AttributeError" in listing["bad"][1]
    assert "ModuleNotFoundError" in listing["missing"][1]
    with pytest.raises(R.UnavailableError, match="'missing' is unavailable"):
        reg.get("missing")


def test_entry_points_are_discovered(monkeypatch):
    eps = [EntryPoint(name="plugin", value="math:e", group="lpmrf_bench.restorers")]
    monkeypatch.setattr(R, "entry_points", lambda group: [e for e in eps if e.group == group])
    reg: R.Registry[float] = R.Registry("method", entry_point_group="lpmrf_bench.restorers")
    reg.add("builtin", "math:pi")
    assert reg.names() == ["builtin", "plugin"]
    assert reg.get("plugin") == pytest.approx(2.71828, abs=1e-5)


def test_conflicting_registration_refused():
    reg: R.Registry[float] = R.Registry("metric")
    reg.add("x", "math:pi")
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("x", "math:e")
