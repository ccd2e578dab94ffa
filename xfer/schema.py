"""Mappings (parsed YAML) into frozen dataclasses, with one-line errors for bad input.

Unknown keys are refused naming the key and suggesting the nearest known one; values are checked
against the dataclass's type hints (int, float, str, bool, tuples, optionals, nested dataclasses).
Fields whose metadata says ``bytes=True`` (or whose name ends in ``_bytes``) also accept budget
names such as ``10K`` or ``6M``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

from xfer.boundary import MAX_NAME, NAME_PATTERN, check_name, inside, within
from xfer.errors import XferError
from xfer.units import MAX_BYTE_COUNT, parse_bytes

MAX_CONTEXT = 1 << 16  # bytes: the longest window a run trains on or a stored model claims
MAX_INT = 2**63 - 1  # the largest integer any config or table field holds

__all__ = ["MAX_BYTE_COUNT", "MAX_CONTEXT", "MAX_NAME", "NAME_PATTERN", "build", "byte_count",
           "check_keys", "check_name", "coerce", "inside", "nearest", "require", "within"]


def byte_count(value: object, what: str) -> int:
    """A positive whole number of bytes from ``6M``, ``6e6``, ``6000000`` or a number
    (:func:`xfer.units.parse_bytes`) that fits int64; else XferError naming ``what``."""
    try:
        return parse_bytes(value)  # type: ignore[arg-type]
    except XferError as exc:
        raise XferError(f"{what}: {exc}") from None
    except (OverflowError, ValueError, ArithmeticError, TypeError):
        raise XferError(f"{what}: not a finite byte count: {str(value)[:40]!r}") from None


def require(data: Mapping[str, Any], spec: Mapping[str, type | tuple[type, ...]],
            where: str) -> None:
    """Each dotted key of ``spec`` (``"train.seq_len"``) is in ``data`` with a value of the
    given type(s) (a bool is no number); else XferError naming ``where`` and the key."""
    for dotted, types_ in spec.items():
        value: Any = data
        for part in dotted.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise XferError(f"{where}: no {dotted!r} entry")
            value = value[part]
        allowed = types_ if isinstance(types_, tuple) else (types_,)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise XferError(f"{where}: {dotted} must be {names}, got {_short(value)}")


def nearest(name: str, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, or an empty string."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(data: Mapping[str, Any], known: list[str], where: str) -> None:
    """Refuse the first key of ``data`` that is not in ``known``, suggesting the nearest."""
    for key in data:
        if key not in known:
            raise XferError(f"{where}: unknown key {key!r}{nearest(str(key), known)}; "
                            f"known keys: {', '.join(known)}")


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge integer"
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, where: str, *, is_bytes: bool = False) -> Any:
    """``value`` checked (and lightly converted) against the type hint ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where, is_bytes=is_bytes)
            except XferError as exc:
                errors.append(str(exc))
        raise XferError(errors[0] if len(errors) == 1 else
                        f"{where}: expected {_type_name(tp)}, got {_short(value)}")
    if origin in (tuple, list):
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise XferError(f"{where}: expected a list, got {_short(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise XferError(f"{where}: expected {len(args)} items, got {_short(value)}")
            return tuple(coerce(v, a, f"{where}[{i}]", is_bytes=is_bytes)
                         for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        items = [coerce(v, item, f"{where}[{i}]", is_bytes=is_bytes) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise XferError(f"{where}: expected a mapping, got {_short(value)}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise XferError(f"{where}: expected true or false, got {_short(value)}")
        return value
    if tp is int:
        if is_bytes and not isinstance(value, bool):
            return byte_count(value, where)
        if isinstance(value, bool) or not isinstance(value, int):
            raise XferError(f"{where}: expected an integer, got {_short(value)}")
        if abs(value) > MAX_INT:
            raise XferError(f"{where} must be at most 2**63-1 in size, got {value:.3e}")
        return value
    if tp is float:
        if isinstance(value, bool):
            raise XferError(f"{where}: expected a number, got {_short(value)}")
        if isinstance(value, str):  # YAML 1.1 reads 2e-4 (no dot) as a string
            try:
                value = float(value) if len(value) <= 40 else math.inf
            except ValueError:
                raise XferError(f"{where}: expected a number, got {_short(value)}") from None
        if not isinstance(value, int | float):
            raise XferError(f"{where}: expected a number, got {_short(value)}")
        if isinstance(value, int) and abs(value) > MAX_INT:
            raise XferError(f"{where}: {value:.3e} is out of range")
        if not math.isfinite(value):
            raise XferError(f"{where}: {value!r} is not a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise XferError(f"{where}: expected a string, got {_short(value)}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise XferError(f"{where}: expected {_type_name(tp)}, got {_short(value)}")
    return value


def build(cls: type, data: Any, where: str, base: Any = None) -> Any:
    """An instance of the dataclass ``cls`` from a mapping (missing keys: defaults, or ``base``'s
    values when given). Unknown keys and wrong types raise a one-line XferError."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise XferError(f"{where}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    check_keys(data, list(fields), where)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        field = fields[name]
        values[name] = coerce(value, hints[name], f"{where}.{name}",
                              is_bytes=bool(field.metadata.get("bytes")) or name.endswith("_bytes"))
    try:
        if base is not None:
            return dataclasses.replace(base, **values)
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        missing = [n for n, f in fields.items() if n not in values and f.default is
                   dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise XferError(f"{where}: missing key {missing[0]!r}") from None
        raise XferError(f"{where}: {exc}") from None
