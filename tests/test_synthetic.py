"""The generated languages: determinism, scripts and byte widths, the twin, the ground truth."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest

from xfer.data import synthetic
from xfer.data.synthetic import DEFAULT_LANGUAGES, LANGUAGES, describe, documents
from xfer.data.synthetic_content import sample_content
from xfer.data.synthetic_surface import CYRILLIC, GREEK, Grammar, Surface, stems
from xfer.errors import XferError

# Unicode ranges of each script's letters, and the UTF-8 bytes every letter takes.
SCRIPT_BLOCKS = {
    "latin": ((0x61, 0x7A), 1),
    "cyrillic": ((0x0400, 0x04FF), 2),
    "greek": ((0x0370, 0x03FF), 2),
    "hangul": ((0xAC00, 0xD7A3), 3),
    "cjk": ((0x4E00, 0x9FFF), 3),
    "armenian": ((0x0531, 0x058F), 2),
}
PUNCTUATION = set(" .。")
INVERSE_GREEK = {v: k for k, v in GREEK.items()}


def take(lang: str, seed: int, n: int) -> list[str]:
    return list(islice(documents(lang, seed), n))


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_deterministic_and_seeded(lang: str) -> None:
    first = take(lang, 5, 40)
    assert first == take(lang, 5, 40)
    assert first != take(lang, 6, 40)
    assert all(doc and doc == doc.strip() for doc in first)


def test_stream_is_endless_across_batches() -> None:
    n = synthetic.DOCS_PER_BATCH * 2 + 5
    docs = take("base", 0, n)
    assert len(docs) == n and len(set(docs)) > n * 0.99


WHOLE_SCRIPT = [lang for lang, spec in LANGUAGES.items()
                if spec.grammar is None or spec.grammar.script_letters is None]


@pytest.mark.parametrize("lang", WHOLE_SCRIPT)
def test_script_block_and_utf8_width(lang: str) -> None:
    spec = LANGUAGES[lang]
    (lo, hi), width = SCRIPT_BLOCKS[spec.script]
    letters = set("".join(take(lang, 1, 50))) - PUNCTUATION
    assert letters and all(lo <= ord(ch) <= hi for ch in letters), lang
    assert {len(ch.encode("utf-8")) for ch in letters} == {width}


def test_scripts_are_disjoint_unicode_blocks() -> None:
    letters = {}
    for lang in WHOLE_SCRIPT:
        spec = LANGUAGES[lang]
        letters.setdefault(spec.script, set()).update("".join(take(lang, 2, 20)))
    scripts = list(letters)
    for i, a in enumerate(scripts):
        for b in scripts[i + 1:]:
            assert letters[a] & letters[b] <= PUNCTUATION, (a, b)


def test_twin_is_a_letter_for_letter_transliteration_of_base() -> None:
    table = str.maketrans(CYRILLIC)
    assert len(set(CYRILLIC.values())) == len(CYRILLIC)  # injective: base is recoverable
    base, twin = take("base", 3, 300), take("twin", 3, 300)
    assert [doc.translate(table) for doc in base] == twin
    assert all(len(b) == len(t) for b, t in zip(base, twin, strict=True))
    assert not set("".join(twin)) & set("".join(base)) - PUNCTUATION
    total = sum(len(d.encode("utf-8")) for d in twin) / sum(len(d.encode("utf-8")) for d in base)
    assert 1.5 < total < 2.0  # letters double in size, spaces and periods do not


def test_content_languages_say_the_same_things() -> None:
    """For one seed, every content language has the same documents with the same sentences."""
    content = [lang for lang, spec in LANGUAGES.items() if spec.grammar is not None]
    counts = {lang: [doc.count("。") + doc.count(".") for doc in take(lang, 4, 100)]
              for lang in content}
    assert len({tuple(c) for c in counts.values()}) == 1


def test_relative_differs_in_order_and_affixes_but_shares_stems() -> None:
    base, relative = take("base", 7, 200), take("relative", 7, 200)
    base_words, rel_words = set(" ".join(base).split()), set(" ".join(relative).split())
    assert len(base_words & rel_words) < 0.5 * len(base_words)  # affixes/order change forms
    # ...but the base lexicon's stems occur in relative (and Greek cousin) text about as often
    # as in base text, and hardly in text of the same content with its own lexicon
    long_stems = ["".join(m) for m in stems(LANGUAGES["base"].grammar.lexicon_seed) if len(m) >= 3]

    def share(docs: list[str]) -> float:
        text = " ".join(docs)
        return sum(stem in text for stem in long_stems) / len(long_stems)

    assert share(relative) > 0.8 * share(base) > 0.1
    cousin = take("cousin", 7, 200)
    assert share([doc.translate(str.maketrans(INVERSE_GREEK)) for doc in cousin]) > 0.1
    own_lexicon = Grammar(**{**LANGUAGES["distant"].grammar.__dict__, "script": "latin"})
    content = sample_content(np.random.default_rng(7), 200)
    assert share(list(Surface(own_lexicon).render(content))) < 0.2 * share(base)
    assert base != relative


def test_markov_is_the_order_2_chain_it_claims() -> None:
    """Empirical next-character frequencies match the chain's table (no hidden structure)."""
    alphabet = synthetic.MARKOV_ALPHABET
    k = len(alphabet)
    index = {ch: i for i, ch in enumerate(alphabet)}
    docs = take("markov", 0, 400)
    assert all(100 <= len(doc) <= 1500 for doc in docs)
    seq = np.array([index[ch] for doc in docs for ch in doc])
    ctx, nxt = seq[:-2] * k + seq[1:-1], seq[2:]
    counts = np.zeros((k * k, k))
    np.add.at(counts, (ctx, nxt), 1)
    table = synthetic._markov_table()
    expected = np.stack([np.bincount(row, minlength=k) for row in table]) / table.shape[1]
    frequent = counts.sum(axis=1) > 1000
    assert frequent.sum() >= 20
    observed = counts[frequent] / counts[frequent].sum(axis=1, keepdims=True)
    assert np.abs(observed - expected[frequent]).max() < 0.08


def test_defaults_and_descriptions() -> None:
    assert {"base", "twin", "relative", "markov"} <= set(DEFAULT_LANGUAGES) <= set(LANGUAGES)
    for lang, spec in LANGUAGES.items():
        assert spec.name == lang and len(spec.description) > 40
        assert describe(lang).startswith(f"{lang}: ")
    assert LANGUAGES["markov"].grammar is None


@pytest.mark.parametrize("bad", ["klingon", "", "BASE"])
def test_unknown_language_is_an_xfer_error(bad: str) -> None:
    with pytest.raises(XferError, match="unknown synthetic language"):
        documents(bad, 0)
    with pytest.raises(XferError):
        describe(bad)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_is_an_xfer_error(seed: object) -> None:
    with pytest.raises(XferError, match="seed"):
        documents("base", seed)  # type: ignore[arg-type]


def test_independent_seeds_give_unrelated_documents_per_language() -> None:
    seeds = {lang: synthetic.independent_seed(lang, 0) for lang in LANGUAGES}
    assert len(set(seeds.values())) == len(seeds)
    assert synthetic.independent_seed("base", 0) == seeds["base"]
    assert synthetic.independent_seed("base", 1) != seeds["base"]
    base = take("base", seeds["base"], 50)
    twin = take("twin", seeds["twin"], 50)
    table = str.maketrans(CYRILLIC)
    assert not {doc.translate(table) for doc in base} & set(twin)
    with pytest.raises(XferError):
        synthetic.independent_seed("klingon", 0)
