"""Architecture names `<family>_<size>` (as PMRF's `create_arch` spells them) -> configs and modules.

A checkpoint records the name and the config's fields, so sizes that are not registered still rebuild.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from torch import nn

from lpmrf_bench.models.hdit import HDIT_CONFIGS, HDiT, HDiTConfig, LevelConfig
from lpmrf_bench.models.swinir import SWINIR_CONFIGS, SwinIR, SwinIRConfig


def _hdit_config(fields: dict[str, Any]) -> HDiTConfig:
    fields = dict(fields)
    fields["levels"] = tuple(LevelConfig(**level) for level in fields["levels"])
    fields["patch_size"] = tuple(fields.get("patch_size", (4, 4)))
    return HDiTConfig(**fields)


def _swinir_config(fields: dict[str, Any]) -> SwinIRConfig:
    fields = dict(fields)
    fields["depths"], fields["num_heads"] = tuple(fields["depths"]), tuple(fields["num_heads"])
    return SwinIRConfig(**fields)


FAMILIES: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], Any], Callable[[Any], nn.Module]]] = {
    "hdit": (HDIT_CONFIGS, _hdit_config, HDiT),
    "swinir": (SWINIR_CONFIGS, _swinir_config, SwinIR),
}


def arch_names() -> list[str]:
    return sorted(name for configs, _, _ in FAMILIES.values() for name in configs)


def _family(name: str) -> str:
    family = name.split("_", 1)[0]
    if family not in FAMILIES:
        raise KeyError(f"unknown architecture {name!r}: the family must be one of {sorted(FAMILIES)}")
    return family


def arch_config(name: str, fields: dict[str, Any] | None = None) -> Any:
    """The config of a registered name, or one rebuilt from recorded `fields` (any size of the family)."""
    configs, from_fields, _ = FAMILIES[_family(name)]
    if fields is not None:
        return from_fields(fields)
    if name not in configs:
        raise KeyError(f"unknown architecture {name!r}; registered: {', '.join(arch_names())}")
    return configs[name]


def config_fields(config: Any) -> dict[str, Any]:
    """JSON-ready fields of a config (the inverse of `arch_config(name, fields)`)."""
    return dataclasses.asdict(config)


def build_arch(name: str, fields: dict[str, Any] | None = None) -> nn.Module:
    _, _, module = FAMILIES[_family(name)]
    return module(arch_config(name, fields))
