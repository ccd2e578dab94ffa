"""Byte budgets: parse names like ``6M`` / ``19M`` / ``6B`` and format them for reports.

A base module (no package of xfer below it): the input boundary (:mod:`xfer.boundary`) and the
schema (:mod:`xfer.schema`) read byte counts with it, so a count is checked for digits and
exponent before any conversion and a crafted ``1e999999`` is refused at once.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from xfer.errors import XferError

_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9, "T": 10**12}
_PATTERN = re.compile(r"^\s*(\d{1,40})(?:\.(\d{1,40}))?(?:e\+?(\d{1,12}))?\s*([KMGBT]?)\s*$",
                      re.IGNORECASE)
MIB = 2**20
MAX_BYTE_COUNT = 2**63 - 1  # byte counts (budgets, split sizes) are int64 in every table
MAX_TEXT = 100  # characters of a byte count written as text


def _too_large(value: object) -> XferError:
    return XferError(f"{value!r} bytes is more than 2**63-1 (the largest byte count a table "
                     "holds)")


def parse_bytes(value: str | int | float) -> int:
    """A byte count from ``6M`` (6e6), ``6B`` (6e9: billions, as the paper names budgets),
    ``10K``, ``6e6`` or a plain integer. Decimal units; a positive whole number of bytes at most
    2**63-1. Digits and exponent are bounded before anything is converted, so no input costs
    more than a few microseconds."""
    if isinstance(value, bool):
        raise XferError(f"not a byte count: {value!r}")
    if isinstance(value, int):
        number = Decimal(value) if -MAX_BYTE_COUNT <= value <= MAX_BYTE_COUNT * 10 else None
        if number is None:
            raise _too_large(value) if value > 0 else XferError(
                f"byte count must be a positive whole number: {value!r}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise XferError(f"not a finite byte count: {value!r}")
        if value > MAX_BYTE_COUNT:
            raise _too_large(value)
        number = Decimal(value)
    else:
        text = str(value)
        match = _PATTERN.match(text) if len(text) <= MAX_TEXT else None
        if not match:
            raise XferError(f"not a byte count: {text[:40]!r} (use e.g. 6M, 19M, 6B or 6000000)")
        whole, frac, exp, suffix = match.groups()
        # magnitude check on the digits alone: 10**(digits + exponent) bounds the value
        digits = len(whole.lstrip("0")) + int(exp or 0) + len(str(_SUFFIX[suffix.upper()])) - 1
        if whole.lstrip("0") and digits > 20:
            raise _too_large(text)
        if not whole.lstrip("0") and int(exp or 0) > 60:  # 0.000…1e61 and up: refused as well
            raise _too_large(text)
        number = Decimal(f"{whole}.{frac or 0}e{exp or 0}") * _SUFFIX[suffix.upper()]  # exact
    if number != int(number) or number <= 0:
        raise XferError(f"byte count must be a positive whole number: {value!r}")
    if number > MAX_BYTE_COUNT:
        raise _too_large(value)
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
    """Short decimal name of a byte count: 6000000 -> '6M', 60000 -> '60K', 2500000 -> '2.5M';
    exact (at most two decimals of the unit, else a smaller unit or the plain number), so two
    budgets never share a name: 1234567000 -> '1234567K', 1234568000 -> '1234568K'."""
    for suffix, scale in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= scale and n % (scale // 100 or 1) == 0:
            whole, hundredths = divmod(n // (scale // 100), 100)
            decimals = f".{hundredths:02d}".rstrip("0") if hundredths else ""
            return f"{whole}{decimals}{suffix}"
    return str(n)


def to_mib(n_bytes: float) -> float:
    """Bytes to MiB (2^20 bytes): the unit the paper's tables call "MB"."""
    return n_bytes / MIB
