"""Field checks of the job specs: every value has the type its field declares.

The spec dataclasses (``core.specs``) call :func:`check_field_types` in ``__post_init__``;
a value of the wrong type raises :class:`SpecError` named by its place in the spec
(``train.epochs``).
"""

from __future__ import annotations

import functools
import math
import numbers
import re
import typing
from collections.abc import Callable
from dataclasses import fields
from typing import Any


class SpecError(ValueError):
    """A job specification that cannot run, with a message that says why."""


def is_integer(value: Any) -> bool:
    """An int or an integral float (``2.0`` from JSON); never a bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and float(value).is_integer()


def check_integer(value: Any, where: str) -> int:
    """``value`` as an int (an integral float from JSON too)."""
    if not is_integer(value):
        raise SpecError(f"{where} must be an integer, got {value!r}")
    return int(value)


def check_number(value: Any, where: str) -> float:
    """``value`` as a finite float: ints and floats; no bools, NaN or infinities."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise SpecError(f"{where} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise SpecError(f"{where} must be a finite number, got {value!r}")
    return number


def check_text(value: Any, where: str) -> str:
    """``value``, which must be a string."""
    if not isinstance(value, str):
        raise SpecError(f"{where} must be a string, got {value!r}")
    return value


def check_flag(value: Any, where: str) -> bool:
    """``value``, which must be a bool (no 0/1 or strings)."""
    if not isinstance(value, bool):
        raise SpecError(f"{where} must be true or false, got {value!r}")
    return value


CHECKS: dict[type, Callable[[Any, str], Any]] = {
    int: check_integer, float: check_number, str: check_text, bool: check_flag}


@functools.cache
def field_types(cls: type) -> dict[str, tuple[type, bool]]:
    """``{field: (type, optional)}`` for the fields of ``cls`` declared int/float/str/bool."""
    hints = typing.get_type_hints(cls)
    declared = {}
    for f in fields(cls):
        args = typing.get_args(hints[f.name]) or (hints[f.name],)
        optional = type(None) in args
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1 and kinds[0] in CHECKS:
            declared[f.name] = (kinds[0], optional)
    return declared


def check_field_types(spec: Any, section: str) -> None:
    """Check (and normalise, e.g. ``2.0`` -> ``2``) the scalar fields of a frozen spec."""
    for name, (kind, optional) in field_types(type(spec)).items():
        value = getattr(spec, name)
        if value is None and optional:
            continue
        where = f"{section}.{name}" if section else name
        object.__setattr__(spec, name, CHECKS[kind](value, where))


def layer_indices(value: Any) -> tuple[int, ...]:
    """Student layers from a list/tuple of ints or a string such as ``"0,2"`` / ``"0 2"``."""
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,\s]+", value.strip().strip("[]()")) if p]
        if not all(re.fullmatch(r"[+-]?\d+", p) for p in parts):
            raise SpecError(f"student.layers must be teacher layer indices such as '0,2,4', "
                            f"got {value!r}")
        return tuple(int(p) for p in parts)
    if isinstance(value, (list, tuple)) and all(is_integer(v) for v in value):
        return tuple(int(v) for v in value)
    raise SpecError(f"student.layers must be a list of teacher layer indices such as "
                    f"[0, 2, 4], got {value!r}")
