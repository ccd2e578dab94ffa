"""Typological distances between two languages from lang2vec's URIEL feature sets.

PyPI's lang2vec 1.1.2 ships the URIEL feature matrices but no ``distance()``, so the six
distances are computed here from its packaged data files (``lang2vec/data/*.npz``), with the same
method as URIEL+ (``urielplus``' ``new_distance``, default settings):

1. Per language and feature, aggregate the sources by union: the maximum of the known values
   (URIEL marks unknown as -1); a feature with no known value is unknown.
2. Keep only the features known for *both* languages.
3. Distance = angular distance of the two vectors, ``arccos(cos θ) · 2 / π`` ∈ [0, 1]
   (a zero vector is replaced by a tiny constant one, as URIEL+ does).

Feature sets: syntactic = ``S_*`` and phonological = ``P_*`` and inventory = ``INV_*`` features
of ``features.npz`` (WALS, SSWL, Ethnologue, PHOIBLE sources), featural = all of them; genetic =
``family_features.npz`` (Glottolog family membership); geographic = ``geocoord_features.npz``
(closeness to 299 points on the globe). No data is downloaded: all of it is inside the package.
Language codes: ISO 639-1 (as in our configs) are mapped to ISO 639-3 by :data:`ISO639_3`.
"""

from __future__ import annotations

import argparse
import json
import math
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path

import numpy as np

from xfer.errors import XferError

DISTANCE_KINDS = ("syntactic", "geographic", "phonological", "genetic", "inventory", "featural")
_PREFIX = {"syntactic": "S_", "phonological": "P_", "inventory": "INV_", "featural": ""}
_FILES = {"typological": "features.npz", "genetic": "family_features.npz",
          "geographic": "geocoord_features.npz"}


def _data_file(name: str) -> Path:
    """A data file of the installed lang2vec distribution, found without importing lang2vec
    (its ``bin/lang2vec.py`` script shadows the package when ``xfer`` runs as a console script)."""
    path = Path(str(metadata.distribution("lang2vec").locate_file(f"lang2vec/data/{name}")))
    if not path.is_file():
        raise XferError(f"lang2vec data file missing: {path}")
    return path


@lru_cache(maxsize=1)
def iso639_3_map() -> dict[str, str]:
    """ISO 639-1 -> ISO 639-3, the one mapping used for lang2vec (lang2vec's own letter_codes)."""
    return dict(json.loads(_data_file("letter_codes.json").read_text()))


@cache
def _matrix(group: str) -> tuple[dict[str, int], np.ndarray, np.ndarray]:
    """(language index, feature names, data[lang, feature] aggregated by union over sources)."""
    with _data_file(_FILES[group]).open("rb") as handle, np.load(handle) as npz:
        langs = [str(x) for x in npz["langs"]]
        feats = np.array([str(x) for x in npz["feats"]])
        data = npz["data"].max(axis=2)  # union: -1 only where no source knows the value
    return {code: i for i, code in enumerate(langs)}, feats, data


def to_iso639_3(code: str) -> str:
    """URIEL's ISO 639-3 code for ``code`` (ISO 639-1 or already 639-3); XferError if none."""
    code = str(code).strip().lower()
    mapped = iso639_3_map().get(code, code)
    if mapped not in _matrix("genetic")[0]:
        raise XferError(f"unknown language code for lang2vec/URIEL: {code!r}")
    return mapped


def has_entry(code: str) -> bool:
    """Whether ``code`` maps to a language in URIEL."""
    try:
        to_iso639_3(code)
    except XferError:
        return False
    return True


def angular_distance(u: np.ndarray, v: np.ndarray) -> float:
    """``arccos(cos θ) · 2 / π`` of two vectors, in [0, 1]."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    if not np.linalg.norm(u):
        u = np.full(u.shape, 1e-10)
    if not np.linalg.norm(v):
        v = np.full(v.shape, 1e-10)
    cos = float(np.clip(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)), -1.0, 1.0))
    return 2.0 * math.acos(cos) / math.pi


def distance(kind: str, lang1: str, lang2: str) -> float:
    """One URIEL distance (see the module docstring) between two languages; NaN when the two
    share no known feature of that kind."""
    if kind not in DISTANCE_KINDS:
        raise XferError(f"unknown distance kind {kind!r} (one of {', '.join(DISTANCE_KINDS)})")
    a, b = to_iso639_3(lang1), to_iso639_3(lang2)
    group = kind if kind in ("genetic", "geographic") else "typological"
    index, feats, data = _matrix(group)
    u, v = data[index[a]], data[index[b]]
    known = (u != -1) & (v != -1)
    if group == "typological":
        known &= np.char.startswith(feats, _PREFIX[kind])
    if not known.any():
        return float("nan")
    return angular_distance(u[known], v[known])


def distances(lang1: str, lang2: str) -> dict[str, float]:
    """The six distances (syntactic, geographic, phonological, genetic, inventory, featural)."""
    return {kind: distance(kind, lang1, lang2) for kind in DISTANCE_KINDS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``xfer distance L1 L2 [--json]``."""
    parser.add_argument("lang1", help="language code (ISO 639-1 such as en, or ISO 639-3)")
    parser.add_argument("lang2", help="language code")
    parser.add_argument("--json", action="store_true", help="print a JSON object")


def run(args: argparse.Namespace) -> int:
    """Print the six distances between two languages."""
    result = distances(args.lang1, args.lang2)
    if args.json:
        print(json.dumps({"lang1": args.lang1, "lang2": args.lang2, **result}))
    else:
        for kind, value in result.items():
            print(f"{kind:13s} {value:.4f}")
    return 0
