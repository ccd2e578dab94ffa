"""The downstream check's table, made by the analysis (:mod:`xfer.analysis.accuracy`); its names
stay importable from here for the sweep and older callers."""

from __future__ import annotations

from xfer.analysis.accuracy import downstream_table, report_section

__all__ = ["downstream_table", "report_section"]
