"""The graded series and the control: each generated language has the divergence it declares.

The declared values (``synthetic.divergence``) are computed from how a language is built; these
tests measure them again from the generated text, aligned word for word (or letter for letter)
with base's text of the same seed.
"""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest

from xfer.data import synthetic
from xfer.data import synthetic_content as sc
from xfer.data.synthetic import AXES, LETTERS, divergence, documents
from xfer.data.synthetic_surface import GREEK, stems

INVERSE_GREEK = str.maketrans({v: k for k, v in GREEK.items()})


def sentences(lang: str, n_docs: int = 300, seed: int = 5) -> list[list[str]]:
    docs = islice(documents(lang, seed), n_docs)
    return [s.split() for doc in docs for s in doc.split(".") if s.strip()]


@pytest.mark.parametrize("lang", ["lex25", "lex50", "lex75", "lex100"])
def test_lexical_level_replaces_its_share_of_base_stems(lang: str) -> None:
    """Word for word, the share of base's word types that changed is the declared share of
    stems replaced (inflected forms of a replaced stem all change); nothing else changes."""
    declared = divergence(lang)
    assert declared["lexicon"] == pytest.approx(int(lang[3:]) / 100, abs=0.002)
    assert declared["script"] == declared["grammar"] == declared["content"] == 0
    changed: dict[str, bool] = {}
    for ours, theirs in zip(sentences("base"), sentences(lang), strict=True):
        assert len(ours) == len(theirs)  # same grammar: the words align
        for a, b in zip(ours, theirs, strict=True):
            changed[a] = changed.get(a, False) or a != b
    share = sum(changed.values()) / len(changed)
    assert share == pytest.approx(declared["lexicon"], abs=0.08), share


def test_lexical_levels_are_nested_and_replacements_are_foreign() -> None:
    base = set(stems(synthetic.BASE_LEXICON))
    lexicons = {p: synthetic.grammar_lexicon(synthetic.LANGUAGES[f"lex{p}"].grammar)
                for p in (25, 50, 75, 100)}
    assert not set(lexicons[100]) & base  # foreign stems are never base stems
    kept = {p: {i for i, m in enumerate(lex) if m in base} for p, lex in lexicons.items()}
    assert kept[25] > kept[50] > kept[75] > kept[100] == set()
    # replaced stems keep their syllable counts (same word lengths, same bytes per word)
    assert [len(m) for m in lexicons[100]] == [len(m) for m in stems(synthetic.BASE_LEXICON)]


def test_script50_writes_its_declared_share_of_letters_in_cyrillic() -> None:
    base, half = islice(documents("base", 3), 200), islice(documents("script50", 3), 200)
    moved = set()
    for a, b in zip(base, half, strict=True):
        assert len(a) == len(b)  # letter for letter
        moved |= {x for x, y in zip(a, b, strict=True) if x != y}
    assert moved <= set(LETTERS)
    assert len(moved) / len(LETTERS) == divergence("script50")["script"] == 9 / 19
    assert divergence("twin")["script"] == 1.0


def test_grammar_levels_reorder_the_same_words_more_and_more() -> None:
    """gram1 and gram3 say every sentence with base's words in another order; the share of
    base's adjacent word pairs that survive falls as the declared grammar divergence grows."""

    def kept_pairs(lang: str) -> float:
        kept = total = 0
        for ours, theirs in zip(sentences("base"), sentences(lang), strict=True):
            assert sorted(ours) == sorted(theirs)
            pairs = set(zip(theirs, theirs[1:], strict=False))
            kept += sum(p in pairs for p in zip(ours, ours[1:], strict=False))
            total += len(ours) - 1
        return kept / total

    assert divergence("gram1")["grammar"] < divergence("gram3")["grammar"] \
        < divergence("relative")["grammar"] == 1.0
    assert 1.0 > kept_pairs("gram1") > kept_pairs("gram3")
    assert {divergence(g)["lexicon"] for g in ("gram1", "gram3", "relative")} == {0.0}


def test_control_shares_no_content_stems_or_letters_with_base() -> None:
    assert divergence("alien") == dict.fromkeys(AXES, 1.0)
    base_text = " ".join(islice(documents("base", 2), 300))
    alien_text = " ".join(islice(documents("alien", 2), 300))
    assert not set(alien_text) & set(base_text) - set(" .")
    long_stems = ["".join(m) for m in stems(synthetic.BASE_LEXICON) if len(m) >= 3]
    latin = alien_text.translate(INVERSE_GREEK)
    base_share = sum(s in base_text for s in long_stems) / len(long_stems)
    alien_share = sum(s in latin for s in long_stems) / len(long_stems)
    assert alien_share < 0.1 * base_share
    # another world: other facts and characteristic attributes, the same shape
    ours, theirs = sc.world(), sc.world(synthetic.ALIEN_WORLD)
    domain = ours.facts >= 0
    assert np.array_equal(domain, theirs.facts >= 0)
    assert (ours.facts[domain] != theirs.facts[domain]).mean() > 0.8
    assert (ours.char_adj != theirs.char_adj).any(axis=1).mean() > 0.8
    # ...and documents as long as base's (an equally learnable language)
    ratio = len(alien_text.encode()) / len(base_text.encode())
    assert 1.3 < ratio < 2.2  # Greek letters take two bytes, spaces and periods one
