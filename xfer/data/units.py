"""Byte budgets: parse names like ``6M`` / ``19M`` / ``6B`` and format MiB for reports."""

from __future__ import annotations

import re

from xfer.errors import XferError

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9, "T": 10**12}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([KMGBT]?)\s*$", re.IGNORECASE)
MIB = 2**20


def parse_bytes(value: str | int | float) -> int:
    """A byte count from ``6M`` (6e6), ``6B`` (6e9: billions, as the paper names budgets),
    ``10K``, ``6e6`` or a plain integer. Decimal units; must be positive."""
    if isinstance(value, bool):
        raise XferError(f"not a byte count: {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _PATTERN.match(str(value))
        if not match:
            raise XferError(f"not a byte count: {value!r} (use e.g. 6M, 19M, 6B or 6000000)")
        number = float(match.group(1)) * _SUFFIX[match.group(2).upper()]
    if number != int(number) or number <= 0:
        raise XferError(f"byte count must be a positive whole number: {value!r}")
    return int(number)


def parse_budgets(values: str | list[str | int]) -> list[int]:
    """Parse a comma-separated list (or a list) of budgets; they must strictly increase."""
    items = values.split(",") if isinstance(values, str) else list(values)
    budgets = [parse_bytes(v) for v in items if str(v).strip()]
    if not budgets:
        raise XferError("no budgets given")
    for a, b in zip(budgets, budgets[1:], strict=False):
        if b <= a:
            raise XferError(f"budgets must strictly increase: {a} then {b}")
    return budgets


def format_budget(n: int) -> str:
    """Short decimal name of a byte count: 6000000 -> '6M', 60000 -> '60K'."""
    for suffix, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale and n % (scale // 100 or 1) == 0:
            value = n / scale
            return f"{value:g}{suffix}"
    return str(n)


def to_mib(n_bytes: float) -> float:
    """Bytes to MiB (2^20 bytes): the unit the paper's tables call "MB"."""
    return n_bytes / MIB
