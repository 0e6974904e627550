"""Typed option tables: a dataclass per table, its fields declared with their ranges, values read from
TOML or ``--set`` strings and checked in one place.

    @dataclass
    class CycleGANOptions:
        cycle: float = option(10.0, "weight of the cycle L1 loss", min=0)
        pool: int = option(50, "generated images D sees from a history; 0 = the newest only", min=0)

    opts = parse(CycleGANOptions, "cyclegan", {"pool": "0"}, origin="--set cyclegan.pool=0")

A wrong type, an out-of-range value or an unknown key is one ``ConfigError`` naming ``table.key`` and
what is valid. A table class may add a ``check(self, table)`` method for rules between its own fields.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any, get_args, get_origin, get_type_hints

from .errors import ConfigError


def option(default: Any = dataclasses.MISSING, help: str = "", *, min: float | None = None,
           max: float | None = None, above: float | None = None, below: float | None = None,
           choices: tuple | None = None, factory=None):
    """A dataclass field with its help line and range: ``min``/``max`` inclusive, ``above``/``below``
    exclusive, ``choices`` the valid values; ``factory`` for mutable defaults (lists)."""
    meta = {"help": help, "min": min, "max": max, "above": above, "below": below, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def fields(cls: type) -> dict[str, tuple[Any, dataclasses.Field]]:
    """name -> (type, dataclass field) of an option table class."""
    hints = get_type_hints(cls)
    return {f.name: (hints[f.name], f) for f in dataclasses.fields(cls)}


INT_LIMIT = 2 ** 63 - 1


def coerce(key: str, value: Any, typ: Any) -> Any:
    """Check (and, for strings from --set, parse) a value against its field type."""
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{key}: expected {expected}, got {value!r}")

    if get_origin(typ) is list:
        (item,) = get_args(typ)
        if isinstance(value, str):
            parts = [p for p in value.strip("[] ").split(",") if p.strip()]
            value_list: list[Any] = [p.strip() for p in parts]
        elif isinstance(value, (list, tuple)):
            value_list = list(value)
        else:
            raise bad(f"a list of {item.__name__}")
        return [coerce(key, v, item) for v in value_list]
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise bad("true or false")
    if typ is int:
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, str):
            try:
                value = int(value.replace("_", ""))
            except ValueError:
                raise bad("an integer") from None
        if not isinstance(value, int):
            raise bad("an integer")
        if abs(value) > INT_LIMIT:   # what a checkpoint's JSON, NumPy and PyTorch hold as an integer
            raise ConfigError(f"{key}: {value} is beyond the 64-bit integers (|value| <= {INT_LIMIT:,})")
        return value
    if typ is float:
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value)
            except ValueError:
                raise bad("a number") from None
        else:
            raise bad("a number")
        if not math.isfinite(out):
            raise bad("a finite number")
        return out
    if typ is str:
        if isinstance(value, str):
            return value
        raise bad("a string")
    raise TypeError(f"unsupported option type {typ}")  # a bug in an option table, not user input


def check_range(key: str, value: Any, meta: dict) -> None:
    """The declared range and choices of one field."""
    choices = meta.get("choices")
    for v in value if isinstance(value, list) and choices is not None else [value]:
        if choices is not None and v not in choices:
            raise ConfigError(f"{key}: unknown value {v!r}; valid: {', '.join(map(str, choices))}")
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        lo, hi, above, below = meta.get("min"), meta.get("max"), meta.get("above"), meta.get("below")
        if lo is not None and v < lo or hi is not None and v > hi or above is not None and v <= above \
                or below is not None and v >= below:
            raise ConfigError(f"{key}: must be {describe_range(meta)}, got {value}")


def describe_range(meta: dict) -> str:
    lo, hi, above, below = meta.get("min"), meta.get("max"), meta.get("above"), meta.get("below")
    if above == 0 and hi is None and below is None:
        return "positive"
    if lo == 0 and hi is None and below is None:
        return "zero or positive"
    left = f"[{lo:g}" if lo is not None else f"({above:g}" if above is not None else "(-inf"
    right = f"{hi:g}]" if hi is not None else f"{below:g})" if below is not None else "inf)"
    return f"in {left}, {right}"


def parse(cls: type, table: str, values: dict[str, Any], origins: dict[str, str] | None = None,
          into: Any = None) -> Any:
    """An instance of option table ``cls`` (or ``into``, updated in place) from ``values``; every key is
    checked against the declared fields (``origins[key]`` names where a value came from in errors)."""
    declared = fields(cls)
    obj = cls() if into is None else into
    origins = origins or {}
    for key, value in values.items():
        where = f"{origins[key]}: " if key in origins else ""
        if key not in declared:
            shown = key if key.isprintable() else key.encode("unicode_escape").decode()   # one line, always
            raise ConfigError(f"{where}unknown config key '{table}.{shown}'; valid: "
                              + (", ".join(f"{table}.{k}" for k in declared) or f"none, [{table}] takes no options"))
        typ, f = declared[key]
        try:
            v = coerce(f"{table}.{key}", value, typ)
            check_range(f"{table}.{key}", v, f.metadata)
        except ConfigError as e:
            raise ConfigError(f"{where}{e}") from None
        setattr(obj, key, v)
    return obj


def check(obj: Any, table: str) -> None:
    """Every field's declared range, then the table's own ``check`` (rules between its fields)."""
    for key, (_, f) in fields(type(obj)).items():
        check_range(f"{table}.{key}", getattr(obj, key), f.metadata)
    own = getattr(obj, "check", None)
    if callable(own):
        own(table)


def as_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def help_of(cls: type) -> dict[str, str]:
    """key -> the help line declared with it."""
    return {k: f.metadata.get("help", "") for k, (_, f) in fields(cls).items()}
