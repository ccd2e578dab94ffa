"""Results tables at the input boundary: a Parquet or CSV file read only when it is a regular
file within its size cap, then each column xfer reads checked: kinds, language names (they
become dataset paths), whole budgets and seeds in range, finite perplexities."""

from __future__ import annotations

from pathlib import Path

from xfer.boundary.files import MAX_NAME, NAME_PATTERN, regular_file
from xfer.errors import XferError
from xfer.kinds import Kind

MAX_ROWS = 10_000_000  # rows of one results table
NAME_COLUMNS = ("source", "target", "init")  # language codes (init: also "scratch")
REQUIRED = ("kind", "target", "init")  # never empty in a row
COUNT_COLUMNS = ("budget", "seed")  # whole numbers from 0 to 2**63-1
NUMBER_COLUMNS = ("perplexity", "dev_perplexity", "bits_per_byte", "dev_bits_per_byte", "lr")


def read_table(path: Path, what: str | None = None):  # -> pandas.DataFrame
    """The results table in ``path`` (``.parquet`` or ``.csv``), a regular file within
    ``CAPS['table']``, checked by :func:`check_results`; XferError naming the file otherwise."""
    import pandas as pd

    where = what or str(path)
    path = Path(path)
    if path.suffix not in (".parquet", ".csv"):
        raise XferError(f"{where}: a results table must be .csv or .parquet")
    regular_file(path, where, "table")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001  any loader error of an untrusted file: one line
        text = " ".join(str(exc).split())[:200] or exc.__class__.__name__
        raise XferError(f"{where}: cannot read the results table: {text}") from None
    return check_results(frame, where)


def _bad(where: str, column: str, row: object, value: object, what: str) -> XferError:
    shown = repr(value[:60]) if isinstance(value, str) else f"{value:g}" if isinstance(
        value, float) else str(value)[:60]
    return XferError(f"{where}: {column} {shown} (row {row}) is not {what}")


def check_results(frame, where: str):  # (pandas.DataFrame, str) -> pandas.DataFrame
    """``frame`` if every column xfer reads holds what it should; else XferError naming
    ``where``, the column, the row and the value."""
    import numpy as np
    import pandas as pd

    if len(frame) > MAX_ROWS:
        raise XferError(f"{where}: {len(frame):,} rows, more than {MAX_ROWS:,}")
    if frame.columns.duplicated().any():
        raise XferError(f"{where}: a column name appears twice")
    for column in REQUIRED:
        if column in frame.columns and frame[column].isna().any():
            raise XferError(f"{where}: {column} is empty in row {frame[column].isna().idxmax()}")
    if "kind" in frame.columns:
        bad = ~frame["kind"].map(lambda v: isinstance(v, str) and v in set(Kind))
        if bad.any():
            i = bad.idxmax()
            raise _bad(where, "kind", i, frame.at[i, "kind"], f"one of {', '.join(Kind)}")
    def names(values):  # None/NaN (no source) or a valid name
        return values.map(lambda v: v is None or (isinstance(v, float) and v != v) or (
            isinstance(v, str) and len(v) <= MAX_NAME and bool(NAME_PATTERN.fullmatch(v))))

    def counts(values):
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        return np.isfinite(numbers) & (numbers >= 0) & (numbers < 2.0**63) & (numbers % 1 == 0)

    def numbers(values):  # empty, or finite and not negative
        numeric = pd.to_numeric(values, errors="coerce").astype(float)
        return ~((values.notna() & numeric.isna()) | np.isinf(numeric) | (numeric < 0))

    for columns, good, what in ((NAME_COLUMNS, names, "a valid language name"),
                                (COUNT_COLUMNS, counts, "a whole number from 0 to 2**63-1"),
                                (NUMBER_COLUMNS, numbers, "a finite number >= 0 (or empty)")):
        for column in columns:
            if column not in frame.columns:
                continue
            ok = good(frame[column])
            if not ok.all():
                i = (~ok).idxmax()
                raise _bad(where, column, i, frame.at[i, column], what)
    return frame

