"""Option values between their two forms: as a user types them (CLI flags, config files, keywords, each a string
or a plain value) and as a field of the options' dataclass holds them."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from typing import Any

from bertclf.errors import BertclfError


def default_text(spec: dataclasses.Field) -> str:
    """A field's default as a user would type it (lists comma-joined, strings quoted)."""
    default = spec.default_factory() if spec.default_factory is not dataclasses.MISSING else spec.default
    if isinstance(default, list):
        return ",".join(default)
    return repr(default) if isinstance(default, str) else str(default)


def invalid_option(name: str, value: Any, reason: str) -> BertclfError:
    """The one-line error naming an option (as a field and as its flag), the value given and what is wrong."""
    return BertclfError(f"invalid {name} (--{name.replace('_', '-')}) {value!r}: {reason}")


def base_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; ``list[str] | None`` -> ``list[str]``; other types unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        non_none = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(non_none) == 1:
            return non_none[0]
    return annotation


def coerce(spec: dataclasses.Field, annotation: Any, value: Any) -> Any:
    """Turn strings from the CLI or a config file into the field's type; reject what does not fit."""
    if value is None:
        if type(None) not in typing.get_args(annotation):
            raise invalid_option(spec.name, value, "a value is needed")
        return None
    if spec.name == "max_length":  # `int | str`: a number or "auto"
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        return _to_number(spec.name, value, int)
    target = base_type(annotation)
    if typing.get_origin(target) is list:
        if isinstance(value, str):
            value = value.split(",") if spec.metadata.get("comma_list") else [value]
        if not isinstance(value, (list, tuple)):
            raise invalid_option(spec.name, value, "expected a list of names")
        names = [str(item).strip() for item in value]
        # A list that needs no change is kept as given: scikit-learn's clone checks that the constructor stores it.
        return value if isinstance(value, list) and names == value else names
    if target is bool:
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise invalid_option(spec.name, value, "expected true or false")
        return value
    if target in (int, float):
        return _to_number(spec.name, value, target)
    if isinstance(value, bool) and {"on", "off"} <= set(spec.metadata.get("choices") or ()):
        return "on" if value else "off"  # YAML reads an unquoted on/off as true/false
    return str(value)


# Integers the libraries behind the options take: torch and numpy hold them in 64 bits.
INT_LIMIT = 2**63


def _to_number(name: str, value: Any, kind: type) -> int | float:
    """A number of ``kind`` from ``value``. Every option's number is finite (nan and inf pass every comparison or
    none, and fail later, deep in a library) and an integer fits in 64 bits."""
    expected = f"expected {'an integer' if kind is int else 'a number'}"
    if isinstance(value, bool):
        raise invalid_option(name, value, expected)
    number = value if type(value) is kind else _parse_number(value, kind)  # kept as given: scikit-learn's clone checks
    if number is None:
        raise invalid_option(name, value, expected)
    if isinstance(number, float):
        if not math.isfinite(number):
            raise invalid_option(name, value, "must be a finite number")
        if kind is int:
            if not number.is_integer():
                raise invalid_option(name, value, "expected an integer")
            number = int(number)
    if kind is int and not -INT_LIMIT < number < INT_LIMIT:
        raise invalid_option(name, value, "must be below 2**63 in size")
    return number


def _parse_number(value: Any, kind: type) -> int | float | None:
    """An integer for an integer option when ``value`` is one (exactly: a float rounds a long one), else a float;
    None when neither."""
    if kind is int and isinstance(value, (int, str)):  # not a float: int() would cut 2.5 to 2
        with contextlib.suppress(ValueError):
            return int(value)
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float
        return math.inf
    except (TypeError, ValueError):
        return None
