"""Byte premiums (Arnett et al., 2024): UTF-8 bytes of language L per byte of a reference language
over aligned parallel text (line n of every file is the same sentence).

Raw bytes are not comparable across targets: the same sentence takes about twice the bytes in
Russian as in English. D_T / premium(target) expresses D_T in reference-language bytes.

``xfer premium L [--reference en] [--parallel DIR] [--json]``: without ``--parallel`` the
premiums shipped in :data:`PREMIUMS_FILE` (byte counts only, computed from FLORES-200 dev +
devtest; no network); with it, computed from ``DIR/<code>.txt``. The shipped file is regenerated
with :data:`REGENERATE`.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from xfer.boundary import check_name, read_bytes, resolve
from xfer.errors import XferError
from xfer.io import atomic_write_json

PREMIUMS_FILE = Path(__file__).with_name("premiums.json")
REFERENCE = "en"
# Run in a checkout: the bundled FLORES-200 text (xfer.data.corpora.bundled_parallel) and the
# package data file, both as paths inside the repository.
REGENERATE = ("xfer premium all --parallel xfer/data/corpus/parallel/flores200 "
              "--write xfer/analysis/premiums.json")


@dataclass(frozen=True)
class Premium:
    """``premium`` = bytes of ``language`` / bytes of ``reference`` over ``lines`` aligned lines."""

    language: str
    reference: str
    premium: float
    lines: int


def aligned_lines(folder: Path, language: str) -> list[bytes]:
    """The lines (UTF-8 bytes, newline and surrounding whitespace removed) of
    ``folder/<language>.txt``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise XferError(f"parallel text folder not found: {folder}")
    path = resolve(folder, f"{check_name(language, 'language')}.txt", what="--parallel")
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in folder.glob("*.txt"))) or "none"
        raise XferError(f"no parallel text for {language!r} in {folder} (languages: {have})")
    return [line.strip() for line in read_bytes(path, f"{path}", "text").splitlines()]


def common_bytes(texts: dict[str, list[bytes]]) -> tuple[dict[str, int], int]:
    """Bytes per language over the lines that are non-empty in every language, and their count.
    All languages must have the same number of lines."""
    counts = {lang: len(lines) for lang, lines in texts.items()}
    if len(set(counts.values())) > 1:
        raise XferError(f"parallel files are not aligned: line counts {counts}")
    keep = [all(row) for row in zip(*texts.values(), strict=True)]
    totals = {lang: sum(len(x) for x, k in zip(lines, keep, strict=True) if k)
              for lang, lines in texts.items()}
    return totals, sum(keep)


def byte_premium(language: str, reference: str, totals: dict[str, int], lines: int) -> Premium:
    """Premium of ``language`` against ``reference`` from byte totals over the same lines."""
    for lang in (language, reference):
        if lang not in totals:
            raise XferError(f"no byte count for {lang!r} (known: {', '.join(sorted(totals))}); "
                            "give --parallel DIR with its aligned text")
    if totals[reference] == 0:
        raise XferError(f"reference {reference!r} has no bytes in the aligned lines")
    return Premium(language, reference, totals[language] / totals[reference], lines)


def from_folder(languages: Iterable[str], reference: str, folder: Path) -> list[Premium]:
    """Premiums computed from the aligned files in ``folder`` (lines non-empty in all of them)."""
    languages = list(languages)
    texts = {lang: aligned_lines(folder, lang) for lang in dict.fromkeys([*languages, reference])}
    totals, lines = common_bytes(texts)
    return [byte_premium(lang, reference, totals, lines) for lang in languages]


@cache
def shipped() -> dict:
    """The packaged byte counts: ``{"lines": n, "bytes": {code: bytes}, ...}``."""
    try:
        data = json.loads(PREMIUMS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise XferError(f"cannot read the packaged premiums {PREMIUMS_FILE}: {exc}") from None
    return data


def premium_of(language: str, reference: str = REFERENCE) -> float:
    """The shipped premium of ``language`` (NaN for a language without aligned text, e.g. a
    generated one)."""
    data = shipped()
    if language not in data["bytes"] or reference not in data["bytes"]:
        return math.nan
    return byte_premium(language, reference, data["bytes"], data["lines"]).premium


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``xfer premium L... [--reference en] [--parallel DIR] [--json] [--write FILE]``."""
    parser.add_argument("languages", nargs="+",
                        help="language codes, or 'all' for every language available")
    parser.add_argument("--reference", default=REFERENCE, help="reference language (default en)")
    parser.add_argument("--parallel", type=Path, default=None,
                        help="folder of aligned <code>.txt files (default: the shipped FLORES-200 "
                             "byte counts, no download)")
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.add_argument("--write", type=Path, default=None,
                        help="with --parallel: write the byte counts as the package data file "
                             f"(regenerate with: {REGENERATE})")



def table(premiums: list[Premium]) -> str:
    """Fixed-width text table: language, reference, premium, lines."""
    lines = [f"{'language':<9} {'reference':<9} {'premium':>8} {'lines':>6}"]
    lines += [f"{p.language:<9} {p.reference:<9} {p.premium:>8.3f} {p.lines:>6}"
              for p in premiums]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the premiums (or write the package data with ``--write``)."""
    if args.write and args.parallel is None:
        raise XferError("--write needs --parallel DIR (the aligned text to count)")
    if args.parallel is not None:
        if not Path(args.parallel).is_dir():
            raise XferError(f"parallel text folder not found: {args.parallel}")
        known = sorted(p.stem for p in Path(args.parallel).glob("*.txt"))
    else:
        known = sorted(shipped()["bytes"])
    languages = known if args.languages == ["all"] else args.languages
    if args.parallel is not None:
        premiums = from_folder(languages, args.reference, args.parallel)
    else:
        data = shipped()
        premiums = [byte_premium(lang, args.reference, data["bytes"], data["lines"])
                    for lang in languages]
    if args.write:
        totals, lines = common_bytes({lang: aligned_lines(args.parallel, lang) for lang in known})
        atomic_write_json(args.write, {"about": "UTF-8 bytes per language over the lines that are "
                                       "non-empty in every file of the aligned folder",
                                       "corpus": Path(args.parallel).name, "command": REGENERATE,
                                       "lines": lines, "bytes": totals}, indent=1)
        print(f"wrote {args.write}")
    if args.json:
        out = [asdict(p) for p in premiums]
        print(json.dumps(out[0] if len(out) == 1 else out))
    else:
        print(table(premiums))
    return 0


def in_reference_bytes(frame: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """``frame`` plus ``d_t_en`` (bytes of ``reference`` text) and ``d_t_en_mib`` (MiB): D_T
    divided by the shipped premium of the row's target; NaN for a target without one (e.g. a
    generated language). ``d_t_en_mib_std`` and the interval ``d_t_en_mib_ci_low/high`` too
    when ``frame`` has ``d_t_std`` and ``d_t_mib_ci_low/high``."""
    from xfer.units import MIB

    premiums = frame["target"].map(lambda t: premium_of(str(t), reference)).astype(float)
    out = frame.assign(d_t_en=frame["d_t"] / premiums)
    out["d_t_en_mib"] = out["d_t_en"] / MIB
    if "d_t_std" in frame.columns:
        out["d_t_en_mib_std"] = frame["d_t_std"] / premiums / MIB
    for end in ("low", "high"):
        if f"d_t_mib_ci_{end}" in frame.columns:
            out[f"d_t_en_mib_ci_{end}"] = frame[f"d_t_mib_ci_{end}"] / premiums
    return out
