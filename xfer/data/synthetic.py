"""Generated languages with known relationships: the embedded default corpus ("synthetic").

Every *content* language says the same things (one latent layer of content from
:mod:`xfer.data.synthetic_content`: a fixed world of entities, relations and facts, and one
distribution over sentences about it) and differs only in its surface
(:mod:`xfer.data.synthetic_surface`): script, lexicon, word order and morphology. The *unrelated*
language is a character Markov chain that shares no content structure with them. Because the
relationships are built in, they are a ground truth for the D_T method.

For the same seed all content languages render the *same* documents (a parallel corpus), so the
twin is exactly a letter-for-letter transliteration of the base language.

Graded series: ``lex25`` ... ``lex100`` replace a share of base's stems; ``script25``,
``script50`` and ``twin`` write a quarter, about half or all of base's letters in Cyrillic;
``gram1``, ``gram3`` and ``relative`` change one, three or all six of base's grammar features
(word order first), ``morph1`` and ``morph3`` one or three of them (morphology first: affix
strings, prefixes, case marking); ``alien`` is the unrelated control, a
content language about another world with its own lexicon, affixes, grammar and script. Every
language declares its divergence from base per axis (:func:`divergence`), computed from how it
is built, so the ground truth is data.

Usage::

    from xfer.data.synthetic import documents, describe, DEFAULT_LANGUAGES
    docs = documents("base", seed=0)   # endless, deterministic iterator of str
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import count

import numpy as np

from xfer.data import synthetic_content as sc
from xfer.data.synthetic_surface import LETTERS, Grammar, Surface, grammar_lexicon
from xfer.errors import XferError

DOCS_PER_BATCH = 1024  # content is drawn in batches of this many documents (part of the seed)
BASE_LEXICON, OTHER_LEXICON, THIRD_LEXICON = 11, 23, 37
FOREIGN_LEXICON, ALIEN_LEXICON = 41, 53  # foreign stems of the graded series and the control
ALIEN_WORLD = sc.WORLD_SEED + 1
HALF_LETTERS = "pkdmlsz" + "ai"  # script50 writes these 9 of the 19 letters in Cyrillic
QUARTER_LETTERS = HALF_LETTERS[:5]  # script25: 5 of them (consonants only)
AXES = ("content", "lexicon", "script", "grammar")
GRAMMAR_FEATURES = ("order", "adjective_first", "affixes", "adposition", "marked", "affix_seed")


@dataclass(frozen=True)
class SyntheticLanguage:
    """One generated language: its code, what it shares with which, and how it is made.

    ``grammar`` is None for the unrelated Markov language, whose text comes from
    :func:`markov_documents` instead of the shared content.
    """

    name: str
    description: str
    script: str
    grammar: Grammar | None = None
    world_seed: int = sc.WORLD_SEED


BASE = Grammar(lexicon_seed=BASE_LEXICON, affix_seed=BASE_LEXICON, order="SVO",
               adjective_first=True, affixes="suffix", adposition="pre", marked=("acc",))
RELATIVE = Grammar(lexicon_seed=BASE_LEXICON, affix_seed=OTHER_LEXICON, order="SOV",
                   adjective_first=False, affixes="prefix", adposition="case",
                   marked=("nom", "acc"))

_LANGS = (
    SyntheticLanguage(
        "base", "Latin script (1 byte/char); SVO, adjective before noun, suffixes, prepositions; "
        "the reference language: every content language says the same things.", "latin", BASE),
    SyntheticLanguage(
        "twin", "base written in Cyrillic (2 bytes/char): a letter-for-letter transliteration of "
        "base; shares content, lexicon, word order and morphology, no letter bytes.",
        "cyrillic", Grammar(**{**BASE.__dict__, "script": "cyrillic"})),
    SyntheticLanguage(
        "relative", "shares content, stems and Latin script with base; differs in word order "
        "(SOV, noun before adjective) and morphology (other affixes, as prefixes; locative case "
        "instead of a preposition).", "latin", RELATIVE),
    SyntheticLanguage(
        "markov", "unrelated: an order-2 character Markov chain over Armenian letters "
        "(2 bytes/char), space and period; shares no content, lexicon, word order, morphology "
        "or letter bytes with the others.", "armenian"),
    SyntheticLanguage(
        "cousin", "relative written in Greek (2 bytes/char): shares content and stems with base; "
        "differs in script, word order and morphology.",
        "greek", Grammar(**{**RELATIVE.__dict__, "script": "greek"})),
    SyntheticLanguage(
        "distant", "shares only content with base: own lexicon and affixes, VSO, noun before "
        "adjective, postpositions, Hangul syllable blocks (3 bytes/char).", "hangul",
        Grammar(lexicon_seed=OTHER_LEXICON, affix_seed=THIRD_LEXICON, order="VSO",
                adjective_first=False, affixes="suffix", adposition="post",
                marked=("nom",), script="hangul")),
    SyntheticLanguage(
        "logographic", "shares only content with base: own lexicon, SOV, grammatical particles, "
        "one CJK ideograph per morpheme (3 bytes/char), no spaces.", "cjk",
        Grammar(lexicon_seed=THIRD_LEXICON, affix_seed=OTHER_LEXICON, order="SOV",
                adjective_first=True, affixes="particle", adposition="post",
                marked=("acc",), script="cjk")),
)


def _graded(name: str, what: str, script: str = "latin", **changes: object) -> SyntheticLanguage:
    """A relative of base that changes only ``changes`` (fields of its Grammar)."""
    return SyntheticLanguage(name, f"base with {what}; shares everything else with base.", script,
                             Grammar(**{**BASE.__dict__, "script": script,
                                        "foreign_seed": FOREIGN_LEXICON, **changes}))


_GRADED = (
    *(_graded(f"lex{p}", f"{p} % of its stems replaced by foreign stems of the same length",
              replaced=p / 100) for p in (25, 50, 75, 100)),
    _graded("script25", f"{len(QUARTER_LETTERS)} of its 19 letters ({QUARTER_LETTERS}) written "
            "in Cyrillic (2 bytes/char)", "cyrillic", script_letters=QUARTER_LETTERS),
    _graded("script50", f"{len(HALF_LETTERS)} of its 19 letters ({HALF_LETTERS}) written in "
            "Cyrillic (2 bytes/char)", "cyrillic", script_letters=HALF_LETTERS),
    _graded("gram1", "another word order (SOV)", order="SOV"),
    _graded("morph1", "other affix strings (1 of 6 grammar features)", affix_seed=OTHER_LEXICON),
    _graded("morph3", "other affix strings, as prefixes, the nominative marked too (3 of 6 "
            "grammar features)", affix_seed=OTHER_LEXICON, affixes="prefix",
            marked=("nom", "acc")),
    _graded("gram3", "another word order (SOV), nouns before adjectives and postpositions",
            order="SOV", adjective_first=False, adposition="post"),
    SyntheticLanguage(
        "alien", "the unrelated control: a content language about another world (its own "
        "entities, facts and attributes), with its own lexicon (no stem of base), affixes, "
        "grammar (VSO, prefixes, postpositions) and Greek script (2 bytes/char).", "greek",
        Grammar(lexicon_seed=BASE_LEXICON, affix_seed=THIRD_LEXICON, order="VSO",
                adjective_first=False, affixes="prefix", adposition="post", marked=("nom",),
                script="greek", replaced=1.0, foreign_seed=ALIEN_LEXICON), ALIEN_WORLD),
)
_LANGS = (*_LANGS, *_GRADED)
LANGUAGES: dict[str, SyntheticLanguage] = {lang.name: lang for lang in _LANGS}
DEFAULT_LANGUAGES: tuple[str, ...] = ("base", "twin", "relative", "markov")


def language(lang: str) -> SyntheticLanguage:
    """The language called ``lang``; XferError if there is none."""
    try:
        return LANGUAGES[lang]
    except KeyError:
        raise XferError(
            f"unknown synthetic language {lang!r} (known: {', '.join(LANGUAGES)})") from None


def describe(lang: str) -> str:
    """One line of ground truth for reports: ``name: what it shares with which``."""
    return f"{lang}: {language(lang).description}"


@cache
def _surface(g: Grammar) -> Surface:
    return Surface(g)


@cache
def divergence(lang: str) -> dict[str, float]:
    """How far ``lang`` is from base on each axis of :data:`AXES`, from 0 (same) to 1.

    content: 0 for the shared world, 1 for another world or none (markov); lexicon: the share
    of stems that differ from base's; script: the share of the 19 letters written in another
    script (1 for Hangul, CJK and markov); grammar: the share of :data:`GRAMMAR_FEATURES` that
    differ from base's.
    """
    g = language(lang).grammar
    if g is None:
        return dict.fromkeys(AXES, 1.0)
    own, base = grammar_lexicon(g), grammar_lexicon(BASE)
    if g.script == "latin":
        script = 0.0
    elif g.script in ("cyrillic", "greek"):
        script = len(g.script_letters or LETTERS) / len(LETTERS)
    else:
        script = 1.0
    grammar = sum(getattr(g, f) != getattr(BASE, f) for f in GRAMMAR_FEATURES)
    return {"content": float(language(lang).world_seed != sc.WORLD_SEED),
            "lexicon": sum(a != b for a, b in zip(own, base, strict=True)) / len(base),
            "script": script, "grammar": grammar / len(GRAMMAR_FEATURES)}


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise XferError(f"synthetic seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def documents(lang: str, seed: int) -> Iterator[str]:
    """Endless deterministic stream of documents (str, no separator bytes) of ``lang``.

    The same (lang, seed) always gives the same stream; content languages with the same seed
    say the same things (the n-th documents are translations of each other).
    """
    spec = language(lang)
    seed = _check_seed(seed)
    if spec.grammar is None:
        return markov_documents(seed)
    return _content_documents(_surface(spec.grammar), seed, spec.world_seed)


def independent_seed(lang: str, seed: int) -> int:
    """A stream seed for ``lang`` that no other language shares (for building datasets).

    ``documents(lang, seed)`` is parallel across content languages for one seed; a dataset built
    that way would put translations of one language's test documents into another's training
    data whenever their splits fall at different documents (splits are cut by bytes, and scripts
    differ in bytes per character). Seeding each language's dataset with
    ``independent_seed(lang, seed)`` keeps the languages' documents independent draws.
    """
    language(lang)
    return _check_seed(seed) * 1_000_003 + zlib.crc32(lang.encode("utf-8")) % 1_000_003


def _content_documents(surface: Surface, seed: int, world_seed: int) -> Iterator[str]:
    for batch in count():
        content = sc.sample_content(np.random.default_rng([seed, batch]), DOCS_PER_BATCH,
                                    world_seed)
        yield from surface.render(content)


MARKOV_SYMBOLS = 19  # letters; then space and period
# Armenian letters (2 bytes each in UTF-8): a block no other language uses.
MARKOV_ALPHABET = "".join(chr(0x0561 + i) for i in range(MARKOV_SYMBOLS)) + " ."
MARKOV_SEED = 7_001
MARKOV_CHAINS = 1024  # chains run in parallel; each becomes a run of documents
MARKOV_STEPS = 1024  # characters per chain per batch
MARKOV_RESOLUTION = 1024  # next-character probabilities are multiples of 1/1024


@cache
def _markov_table() -> np.ndarray:
    """The fixed chain as a lookup table [k*k contexts, 1024]: a uniform column gives the next
    character (index into MARKOV_ALPHABET) with its transition probability."""
    rng = np.random.default_rng(MARKOV_SEED)
    k = len(MARKOV_ALPHABET)
    cdf = np.cumsum(rng.dirichlet(np.full(k, 0.15), size=k * k), axis=1)
    return sc.sampling_table(cdf, MARKOV_RESOLUTION)


def markov_documents(seed: int) -> Iterator[str]:
    """The unrelated language: documents cut from parallel order-2 character Markov chains.

    Document lengths (characters) follow the content languages' typical range (about 150-900).
    """
    table = _markov_table()
    k = len(MARKOV_ALPHABET)
    encoded = [ch.encode("utf-8") for ch in MARKOV_ALPHABET]
    width = np.array([len(e) for e in encoded])
    code = np.array([list(e.ljust(2, b"\0")) for e in encoded], dtype=np.uint8)  # [k, 2]
    for batch in count():
        rng = np.random.default_rng([seed, batch, MARKOV_SEED])
        a, b = rng.integers(0, k, (2, MARKOV_CHAINS))
        out = np.empty((MARKOV_STEPS, MARKOV_CHAINS), dtype=np.int32)
        draws = rng.integers(0, MARKOV_RESOLUTION, (MARKOV_STEPS, MARKOV_CHAINS))
        for step in range(MARKOV_STEPS):
            a, b = b, table[a * k + b, draws[step]]
            out[step] = b
        symbols = out.T.ravel()
        raw = code[symbols][np.arange(2) < width[symbols][:, None]].tobytes()
        char_ends = np.cumsum(150 + rng.poisson(400, size=symbols.size // 150))
        char_ends = char_ends[char_ends <= symbols.size]
        byte_ends = np.cumsum(width[symbols])[char_ends - 1].tolist()
        start = 0
        for end in byte_ends:
            yield raw[start:end].decode("utf-8").strip() or "."
            start = end
