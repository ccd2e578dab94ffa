"""Which of the report's columns a study's languages leave empty, and why: one line per reason.

- A language without a lang2vec/URIEL entry (a generated language, or a code URIEL does not
  know) has no typological distances: the six ``distance_*`` columns of its pairs stay empty,
  so those pairs sit out the distance correlations.
- A target without a byte premium (no aligned parallel text for it among the shipped premiums,
  :data:`xfer.analysis.premium.PREMIUMS_FILE`) has no D_T in English bytes: ``d_t_en`` and
  ``d_t_en_mib`` stay empty, so it sits out the correlations in English bytes.

``--dry-run`` prints these lines before a study starts; the report lists them under "Skipped and
flagged" after it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from xfer.analysis import similarity
from xfer.analysis.premium import premium_of
from xfer.analysis.transfer import Problem

DISTANCE_FIELDS = tuple(f"distance_{kind}" for kind in similarity.DISTANCE_KINDS)
ENGLISH_BYTES_FIELDS = ("d_t_en", "d_t_en_mib")


def left_out(languages: Iterable[str], targets: Iterable[str]) -> list[Problem]:
    """Notes (``kind="note"``) for the columns left empty: one for the ``languages`` (sources and
    targets) without a lang2vec/URIEL entry, one for the ``targets`` without a byte premium;
    none when every language has both."""
    notes = []
    unknown = sorted({str(x) for x in languages if not similarity.has_entry(str(x))})
    if unknown:
        notes.append(Problem(
            f"language(s) {', '.join(unknown)}",
            f"no lang2vec/URIEL entry (e.g. a generated language); distances skipped: columns "
            f"{', '.join(DISTANCE_FIELDS)} left empty for their pairs, which sit out the "
            f"distance correlations", kind="note"))
    no_premium = sorted({str(t) for t in targets if math.isnan(premium_of(str(t)))})
    if no_premium:
        notes.append(Problem(
            f"target(s) {', '.join(no_premium)}",
            f"no byte premium (not among the shipped FLORES-200 byte counts, e.g. a generated "
            f"language); D_T in "
            f"English bytes left out: columns {', '.join(ENGLISH_BYTES_FIELDS)} left empty, "
            f"and these targets sit out the correlations in English bytes", kind="note"))
    return notes
