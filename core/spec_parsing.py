"""Building spec sections from dicts (a JSON/YAML spec file): unknown keys refused, a
string naming a section's key field, a preset overridden field by field."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import fields
from typing import Any

from core.spec_checks import SpecError


def refuse_unknown(cls: type, data: Mapping[Any, Any], where: str,
                   extra: Collection[str] = ()) -> None:
    """Raise :class:`SpecError` naming the keys of ``data`` that ``cls`` has no field for
    (``extra``: other keys the caller maps itself)."""
    unknown = set(data) - {f.name for f in fields(cls)} - set(extra)
    if unknown:
        raise SpecError(f"unknown {where} keys: {sorted(unknown, key=str)}")


def section_dict(cls: type, value: Any, where: str, key: str,
                 extra: Collection[str] = ()) -> dict[str, Any]:
    """A section's settings as a dict: a string names its ``key``, a mapping is copied."""
    if isinstance(value, str):
        return {key: value}
    if not isinstance(value, Mapping):
        raise SpecError(f"{where} must be a {where} {key} (a string) or an object of {where} "
                        f"settings, got {value!r}")
    refuse_unknown(cls, value, where, extra)
    return dict(value)


def build_section(cls: type, value: Any, where: str, key: str) -> Any:
    """A section from its dataclass, a string (its ``key`` field) or a dict of its fields."""
    if isinstance(value, cls):
        return value
    return cls(**section_dict(cls, value, where, key))


def with_preset(
    presets: dict[str, Any], cls: type, value: Any, where: str, key: str = "name"
) -> Any:
    """A preset by name, or a dict whose ``name``/``preset`` picks the preset it overrides."""
    if isinstance(value, cls):
        return value
    value = section_dict(cls, value, where, key)
    preset_name = value.get(key, next(iter(presets)))
    if not isinstance(preset_name, str):
        raise SpecError(f"{where}.{key} must be a string, one of {sorted(presets)}, "
                        f"got {preset_name!r}")
    if preset_name not in presets:
        raise SpecError(f"unknown {where} preset {preset_name!r}; choose from {sorted(presets)}")
    return dataclasses.replace(presets[preset_name], **value)
