"""Byte-budgeted datasets: corpus -> seeded dev/test/train byte files with a manifest.

Public API: :func:`prepare`, :func:`load_split`, :func:`read_manifest`, :func:`iter_documents`,
:func:`open_corpus`, :func:`bundled_corpus` and :func:`bundled_parallel` (the real text shipped
in the package). See :mod:`xfer.data.prepare` for the on-disk format.
"""

from xfer.data.corpora import (
    MC4_LANGUAGES,
    LocalCorpus,
    Mc4Corpus,
    SyntheticCorpus,
    bundled_corpus,
    bundled_parallel,
    open_corpus,
)
from xfer.data.prepare import creation_command, prepare
from xfer.data.store import iter_documents, load_split, read_manifest

__all__ = [
    "MC4_LANGUAGES",
    "LocalCorpus",
    "Mc4Corpus",
    "SyntheticCorpus",
    "bundled_corpus",
    "bundled_parallel",
    "creation_command",
    "iter_documents",
    "load_split",
    "open_corpus",
    "prepare",
    "read_manifest",
]
