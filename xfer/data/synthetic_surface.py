"""Surface languages: lexicon, morphology, word order and script over the shared content.

A :class:`Grammar` turns the content arrays of ``synthetic_content`` into text. Every inflected
word form of a language is precomputed once into a table of strings (each with its leading word
separator); rendering a batch of documents is then a few numpy operations that lay the form ids
out in the language's word order, plus one ``str.join`` per document.

Words are built from morphemes; a morpheme is a tuple of CV(C) syllables drawn from one
phonology. Scripts render morphemes: alphabetic scripts (Latin 1 byte, Cyrillic and Greek 2 bytes
per letter in UTF-8) map letter for letter, Hangul writes one precomposed block per syllable
(3 bytes), and the logographic script writes one CJK ideograph per morpheme (3 bytes, no spaces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np

from xfer.data import synthetic_content as sc

CONSONANTS = "ptkbdgmnlrsvzh"
VOWELS = "aeiou"
CODAS = "nmlrs"
LETTERS = CONSONANTS + VOWELS
# Alphabetic transliterations: one letter of each script per Latin letter (a bijection).
CYRILLIC = dict(zip(LETTERS, "пткбдгмнлрсвзхаеиоу", strict=True))
GREEK = dict(zip(LETTERS, "πτκβδγμνλρσφζχαειου", strict=True))
# Hangul: initial consonant (choseong), vowel (jungseong) and final (jongseong) indices.
_HANGUL_ONSET = dict(zip(CONSONANTS, (17, 16, 15, 7, 3, 0, 6, 2, 5, 14, 9, 8, 12, 18), strict=True))
_HANGUL_VOWEL = dict(zip(VOWELS, (0, 5, 20, 8, 13), strict=True))
_HANGUL_CODA = dict(zip(CODAS, (4, 16, 8, 1, 19), strict=True))
SCRIPTS = ("latin", "cyrillic", "greek", "hangul", "cjk")
ORDERS = ("SVO", "SOV", "VSO")
SENTENCE_END = {"cjk": "。"}  # everything else ends sentences with "."

Morpheme = tuple[str, ...]  # syllables


@dataclass(frozen=True)
class Grammar:
    """How one language says the shared content.

    ``lexicon_seed`` draws the stems (two languages with the same seed share every stem),
    ``affix_seed`` the grammatical morphemes; ``order`` places subject, verb and object;
    ``affixes`` is "suffix", "prefix" or "particle" (separate words); ``adposition`` is "pre",
    "post" or "case" (a locative case affix instead of a word); ``marked`` lists the noun cases
    ("nom", "acc") that carry an affix; ``script`` is one of :data:`SCRIPTS`.

    Graded relatives of a language: ``replaced`` (0-1) is the share of its stems swapped for
    foreign stems (of the same syllable counts, none of them a stem of ``lexicon_seed``'s lexicon,
    drawn from ``foreign_seed``; see :func:`lexicon`); ``script_letters`` lists the Latin letters
    an alphabetic ``script`` writes (the others stay Latin; None: all of them).
    """

    lexicon_seed: int
    affix_seed: int
    order: str = "SVO"
    adjective_first: bool = True
    affixes: str = "suffix"
    adposition: str = "pre"
    marked: tuple[str, ...] = ("acc",)
    script: str = "latin"
    replaced: float = 0.0
    foreign_seed: int = 0
    script_letters: str | None = None


def _syllable(rng: np.random.Generator, weights: np.ndarray) -> str:
    onset = CONSONANTS[rng.choice(len(CONSONANTS), p=weights)] if rng.random() < 0.9 else ""
    coda = CODAS[rng.integers(len(CODAS))] if rng.random() < 0.2 else ""
    return onset + VOWELS[rng.integers(len(VOWELS))] + coda


def _morphemes(rng: np.random.Generator, lengths: list[int],
               taken: set[Morpheme]) -> list[Morpheme]:
    """Distinct morphemes of the given syllable counts (a Zipf-ranked list gets short first)."""
    weights = rng.dirichlet(np.full(len(CONSONANTS), 2.0))
    out = []
    for n in lengths:
        while True:
            m = tuple(_syllable(rng, weights) for _ in range(n))
            if m not in taken:
                taken.add(m)
                out.append(m)
                break
    return out


N_STEMS = (sc.world().n_nouns + sc.N_ADJECTIVES + sc.N_TRANSITIVE + sc.N_INTRANSITIVE
           + len(sc.RELATIONS) + 2)  # + copula + adposition
AFFIX_NAMES = ("plural", "nom", "acc", "loc", "past", "present", "future", "agree", "adj_agree")


@cache
def stems(seed: int) -> tuple[Morpheme, ...]:
    """All stems of a lexicon: nouns, adjectives, verbs, relations, copula, adposition."""
    rng = np.random.default_rng([seed, 1])
    rank = np.arange(N_STEMS) % 100  # within-category Zipf rank ~ id order: frequent = short
    lengths = [1 + int(r >= 4) + int(r >= 30) + int(rng.random() < 0.4) for r in rank]
    return tuple(_morphemes(rng, lengths, set()))


# Which stems a graded lexicon replaces first: one fixed order of all stem ids, so the stems
# replaced at 25 % are among those replaced at 50 % (nested levels).
REPLACE_ORDER = tuple(np.random.default_rng(4_242).permutation(N_STEMS).tolist())


@cache
def foreign_stems(lexicon_seed: int, seed: int) -> tuple[Morpheme, ...]:
    """Stems of the same syllable counts as ``stems(lexicon_seed)``, none equal to any of them."""
    own = stems(lexicon_seed)
    return tuple(_morphemes(np.random.default_rng([seed, 3]), [len(m) for m in own], set(own)))


@cache
def lexicon(lexicon_seed: int, replaced: float = 0.0,
            foreign_seed: int = 0) -> tuple[Morpheme, ...]:
    """The stems of a lexicon with the share ``replaced`` (0-1) of them foreign (see Grammar)."""
    own = stems(lexicon_seed)
    if not replaced:
        return own
    foreign = foreign_stems(lexicon_seed, foreign_seed)
    swap = set(REPLACE_ORDER[:round(replaced * N_STEMS)])
    return tuple(foreign[i] if i in swap else m for i, m in enumerate(own))


def grammar_lexicon(g: Grammar) -> tuple[Morpheme, ...]:
    """The stems ``g`` writes."""
    return lexicon(g.lexicon_seed, g.replaced, g.foreign_seed)


@cache
def grammatical_affixes(seed: int) -> dict[str, Morpheme]:
    """One short morpheme per grammatical function (present tense left unmarked)."""
    rng = np.random.default_rng([seed, 2])
    ms = _morphemes(rng, [1] * len(AFFIX_NAMES), set())
    out = dict(zip(AFFIX_NAMES, ms, strict=True))
    out["present"] = ()
    return out


def _render_alphabet(table: dict[str, str] | None) -> Callable[[Morpheme], str]:
    if table is None:
        return "".join
    trans = str.maketrans(table)
    return lambda m: "".join(m).translate(trans)


def _hangul(m: Morpheme) -> str:
    out = []
    for syl in m:
        onset = _HANGUL_ONSET.get(syl[0], 11)  # 11: silent initial ㅇ
        rest = syl[1:] if syl[0] in _HANGUL_ONSET else syl
        coda = _HANGUL_CODA[rest[1]] if len(rest) > 1 else 0
        out.append(chr(0xAC00 + (onset * 21 + _HANGUL_VOWEL[rest[0]]) * 28 + coda))
    return "".join(out)


def _logograph_renderer(g: Grammar) -> Callable[[Morpheme], str]:
    """One CJK ideograph per morpheme (frequent stems) or two (rare stems)."""
    glyph: dict[Morpheme, str] = {}
    base = 0x4E00
    morphemes = [*grammatical_affixes(g.affix_seed).values(), *grammar_lexicon(g)]
    for i, m in enumerate(morphemes):
        if m and m not in glyph:
            glyph[m] = chr(base + 2 * i) + (chr(base + 2 * i + 1) if len(m) > 2 else "")
    return glyph.__getitem__


def renderer(g: Grammar) -> Callable[[Morpheme], str]:
    """The function that writes one morpheme in the grammar's script."""
    if g.script == "cjk":
        return _logograph_renderer(g)
    if g.script == "hangul":
        return _hangul
    table = {"latin": None, "cyrillic": CYRILLIC, "greek": GREEK}[g.script]
    if table is not None and g.script_letters is not None:
        table = {k: v for k, v in table.items() if k in g.script_letters}
    return _render_alphabet(table)


class Surface:
    """The precomputed form table of one grammar and its rendering of content batches."""

    EMPTY, END, ADPOSITION = 0, 1, 2

    def __init__(self, g: Grammar) -> None:
        w = sc.world()
        write = renderer(g)
        sep = "" if g.script == "cjk" else " "
        st = grammar_lexicon(g)
        af = grammatical_affixes(g.affix_seed)

        def word(stem: Morpheme, *affixes: Morpheme) -> str:
            parts = [a for a in affixes if a]
            if g.affixes == "particle":
                return "".join(sep + write(p) for p in [stem, *parts])
            parts = [stem, *parts] if g.affixes == "suffix" else [*parts[::-1], stem]
            return sep + "".join(write(p) for p in parts)

        cases = [af["nom"] if "nom" in g.marked else (), af["acc"] if "acc" in g.marked else (),
                 af["loc"] if g.adposition == "case" else ()]
        tenses = [af["past"], af["present"], af["future"]]
        numbers = [(), af["plural"]]
        agree = [(), af["agree"]]
        adp = "" if g.adposition == "case" else word(st[N_STEMS - 1])
        forms = ["", SENTENCE_END.get(g.script, "."), adp]
        s_adj, s_vt = w.n_nouns, w.n_nouns + sc.N_ADJECTIVES
        s_vi, s_rel = s_vt + sc.N_TRANSITIVE, s_vt + sc.N_TRANSITIVE + sc.N_INTRANSITIVE
        self.noun0 = len(forms)
        forms += [word(st[n], numbers[k], cases[c])
                  for n in range(w.n_nouns) for k in range(2) for c in range(3)]
        self.adj0 = len(forms)
        forms += [word(st[s_adj + a], (), af["adj_agree"] if k else ())
                  for a in range(sc.N_ADJECTIVES) for k in range(2)]
        self.vt0 = len(forms)
        forms += [word(st[s_vt + v], tenses[t], agree[k])
                  for v in range(sc.N_TRANSITIVE) for t in range(3) for k in range(2)]
        self.vi0 = len(forms)
        forms += [word(st[s_vi + v], tenses[t], agree[k])
                  for v in range(sc.N_INTRANSITIVE) for t in range(3) for k in range(2)]
        self.rel0 = len(forms)
        forms += [word(st[s_rel + r]) for r in range(len(sc.RELATIONS))]
        self.cop0 = len(forms)
        forms += [word(st[N_STEMS - 2], tenses[t], agree[k]) for t in range(3) for k in range(2)]
        self.forms = forms
        self.strip = len(sep)
        noun_phrase = ["adj", "noun"] if g.adjective_first else ["noun", "adj"]
        loc = ["adp", "loc"] if g.adposition == "pre" else ["loc", "adp"]
        s, o = [f"s_{r}" for r in noun_phrase], [f"o_{r}" for r in noun_phrase]
        self.columns = {"SVO": [*s, "verb", *o, *loc], "SOV": [*s, *o, *loc, "verb"],
                        "VSO": ["verb", *s, *o, *loc]}[g.order] + ["end"]

    def _noun(self, noun: np.ndarray, num: np.ndarray, case: int) -> np.ndarray:
        return np.where(noun >= 0, self.noun0 + (noun * 2 + num) * 3 + case, self.EMPTY)

    def _adj(self, adj: np.ndarray, num: np.ndarray) -> np.ndarray:
        return np.where(adj >= 0, self.adj0 + adj * 2 + num, self.EMPTY)

    def roles(self, c: sc.Content) -> dict[str, np.ndarray]:
        """Form ids of every slot of every sentence (EMPTY where a sentence has no such slot)."""
        t = c.stype
        tr, intr, fact = t == sc.TRANSITIVE, t == sc.INTRANSITIVE, t == sc.FACT
        verb = np.select(
            [tr, intr, fact],
            [self.vt0 + (c.verb_t * 3 + c.tense) * 2 + c.subj_num,
             self.vi0 + (c.verb_i * 3 + c.tense) * 2 + c.subj_num,
             self.rel0 + c.rel],
            self.cop0 + c.tense * 2 + c.subj_num,
        )
        empty = np.full(t.size, self.EMPTY)
        o_noun = np.where(tr | fact, self._noun(c.obj, c.obj_num, sc.ACC),
                          np.where(intr, empty, self._adj(c.attr, c.subj_num)))
        has_loc = intr & (c.loc >= 0)
        return {
            "s_noun": self._noun(c.subj, c.subj_num, sc.NOM),
            "s_adj": self._adj(c.subj_adj, c.subj_num),
            "verb": verb,
            "o_noun": o_noun,
            "o_adj": np.where(tr, self._adj(c.obj_adj, c.obj_num), empty),
            "adp": np.where(has_loc, self.ADPOSITION, empty),
            "loc": np.where(has_loc, self._noun(c.loc, np.zeros_like(c.loc), sc.LOC), empty),
            "end": np.full(t.size, self.END),
        }

    def render(self, c: sc.Content) -> Iterator[str]:
        """The documents of one content batch, in order."""
        role = self.roles(c)
        grid = np.stack([role[name] for name in self.columns], axis=1)
        keep = grid != self.EMPTY
        per_doc = np.add.reduceat(keep.sum(axis=1), np.r_[0, np.cumsum(c.doc_sentences)[:-1]])
        ends = np.cumsum(per_doc).tolist()
        tokens = grid[keep].tolist()
        forms = self.forms
        start = 0
        for end in ends:
            yield "".join(map(forms.__getitem__, tokens[start:end]))[self.strip:]
            start = end
