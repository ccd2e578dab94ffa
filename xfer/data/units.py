"""Byte budgets: moved to :mod:`xfer.units` (the base, beside the input boundary); this name
stays until every import says ``xfer.units``."""

from xfer.units import MIB, format_budget, parse_budgets, parse_bytes, to_mib

__all__ = ["MIB", "format_budget", "parse_budgets", "parse_bytes", "to_mib"]
