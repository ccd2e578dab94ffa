"""The latent content layer shared by the generated languages: a fixed world and what is said.

The world is one fixed knowledge base (built from ``WORLD_SEED``, identical for every language
and every stream seed): noun entities in four classes, adjectives with the classes they fit,
transitive and intransitive verbs with the classes of their arguments, characteristic adjectives
per entity, and functional relations (each person lives in one place, owns one thing, ...).

:func:`sample_content` draws documents from it, vectorised with numpy: every document has a
topic (a few entities per class that it keeps mentioning) and a preferred tense; every sentence
has a type (transitive event, intransitive event, fact, attribute) and its slots filled with
lexeme ids and grammatical features. Surface languages (``synthetic_surface``) only render these
arrays, so every content language says the same things in the same proportions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

WORLD_SEED = 20_240_611

PERSON, ANIMAL, PLACE, THING = 0, 1, 2, 3
CLASS_SIZES = (150, 80, 70, 200)  # nouns per class
N_ADJECTIVES = 100
N_TRANSITIVE = 90
N_INTRANSITIVE = 40
# Relations: (domain class, range class). Each domain entity has exactly one object per relation.
RELATIONS = ((PERSON, PLACE), (PERSON, PERSON), (PERSON, THING), (ANIMAL, PLACE), (THING, PLACE))
N_TENSES = 3  # past, present, future
NOM, ACC, LOC = 0, 1, 2  # noun cases

# Sentence types and their probabilities.
TRANSITIVE, INTRANSITIVE, FACT, ATTRIBUTE = 0, 1, 2, 3
TYPE_PROBS = (0.40, 0.20, 0.25, 0.15)
TOPIC_SIZE = 3  # topical entities per class per document
P_TOPICAL = 0.6  # chance that a slot is filled with one of the document's topic entities
P_PLURAL = 0.2
P_ADJECTIVE = 0.3
P_LOCATIVE = 0.5
P_DOC_TENSE = 0.8  # chance that a sentence uses its document's tense
SENTENCES_PER_DOC = (3, 9)  # minimum, plus a Poisson number with this mean
ZIPF_EXPONENT = 1.1


@dataclass(frozen=True)
class World:
    """The fixed knowledge base (all arrays are read-only numpy arrays of lexeme ids)."""

    noun_class: np.ndarray  # [n_nouns] class of each noun
    class_members: np.ndarray  # [4, max_size] noun ids per class, padded with -1
    class_draw: np.ndarray  # [4, RESOLUTION] sampling table: Zipf over each class's members
    adj_draw: np.ndarray  # [4, RESOLUTION] sampling table over the adjectives that fit a class
    char_adj: np.ndarray  # [n_nouns, 2] characteristic adjectives of each entity
    vt_agent: np.ndarray  # [n_vt] agent class of each transitive verb
    vt_patient: np.ndarray  # [n_vt] patient class
    vi_agent: np.ndarray  # [n_vi] agent class of each intransitive verb
    facts: np.ndarray  # [n_rel, n_nouns] object of relation r for entity x (-1 outside domain)
    verb_draw_t: np.ndarray  # sampling tables: Zipf over transitive / intransitive verbs
    verb_draw_i: np.ndarray

    @property
    def n_nouns(self) -> int:
        return int(self.noun_class.size)


RESOLUTION = 1 << 16  # sampling tables: probabilities are multiples of 1/65536


def _zipf_cdf(n: int, exponent: float = ZIPF_EXPONENT) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return np.cumsum(weights / weights.sum())


def sampling_table(cdf: np.ndarray, resolution: int = RESOLUTION) -> np.ndarray:
    """Inverse-CDF lookup table [..., resolution] of indices into the last axis of ``cdf``.

    A uniformly drawn column gives a sample, so sampling is one gather instead of a binary search
    (the generator's speed depends on it); probabilities become multiples of 1/resolution.
    """
    cdf = np.asarray(cdf, dtype=np.float64)
    quantiles = (np.arange(resolution) + 0.5) / resolution
    flat = cdf.reshape(-1, cdf.shape[-1])
    rows = [np.searchsorted(row / row[-1], quantiles).clip(max=row.size - 1) for row in flat]
    return np.stack(rows).reshape(*cdf.shape[:-1], resolution).astype(np.int32)


@cache
def world(seed: int = WORLD_SEED) -> World:
    """Build the fixed world of ``seed`` (cached; identical on every call and machine).

    Every content language shares the world of ``WORLD_SEED``; another seed gives a disjoint
    world of the same shape (same class sizes and distributions, other facts and attributes),
    which the unrelated control language talks about.
    """
    rng = np.random.default_rng(seed)
    noun_class = np.repeat(np.arange(4), CLASS_SIZES)
    max_size = max(CLASS_SIZES)
    members = np.full((4, max_size), -1)
    cdf = np.ones((4, max_size))
    start = 0
    for c, size in enumerate(CLASS_SIZES):
        members[c, :size] = np.arange(start, start + size)
        cdf[c, :size] = _zipf_cdf(size)
        start += size
    class_draw = np.take_along_axis(members, sampling_table(cdf), axis=1)
    fits = rng.random((4, N_ADJECTIVES)) < 0.45  # which adjectives fit which class
    fits[np.arange(4), rng.integers(0, N_ADJECTIVES, 4)] = True
    adj_w = fits / np.arange(1, N_ADJECTIVES + 1) ** ZIPF_EXPONENT
    adj_cdf = np.cumsum(adj_w / adj_w.sum(axis=1, keepdims=True), axis=1)
    char_adj = np.empty((noun_class.size, 2), dtype=np.int64)
    for noun, c in enumerate(noun_class):
        char_adj[noun] = rng.choice(np.flatnonzero(fits[c]), 2, replace=False)
    facts = np.full((len(RELATIONS), noun_class.size), -1)
    for r, (dom, rng_cls) in enumerate(RELATIONS):
        doms = members[dom, : CLASS_SIZES[dom]]
        facts[r, doms] = class_draw[rng_cls, rng.integers(0, RESOLUTION, doms.size)]
    arrays = dict(
        noun_class=noun_class,
        class_members=members,
        class_draw=class_draw,
        adj_draw=sampling_table(adj_cdf),
        char_adj=char_adj,
        vt_agent=rng.choice([PERSON, ANIMAL], N_TRANSITIVE, p=[0.7, 0.3]),
        vt_patient=rng.integers(0, 4, N_TRANSITIVE),
        vi_agent=rng.choice([PERSON, ANIMAL], N_INTRANSITIVE, p=[0.7, 0.3]),
        facts=facts,
        verb_draw_t=sampling_table(_zipf_cdf(N_TRANSITIVE)),
        verb_draw_i=sampling_table(_zipf_cdf(N_INTRANSITIVE)),
    )
    for value in arrays.values():
        value.setflags(write=False)
    return World(**arrays)


@dataclass(frozen=True)
class Content:
    """What a batch of documents says: one entry per sentence (lexeme ids and features).

    Slots a sentence type does not use hold arbitrary values; ``-1`` marks an absent optional
    adjective or locative.
    """

    doc_sentences: np.ndarray  # [n_docs] sentences per document
    stype: np.ndarray  # [n] sentence type
    tense: np.ndarray
    verb_t: np.ndarray
    verb_i: np.ndarray
    rel: np.ndarray
    subj: np.ndarray
    subj_num: np.ndarray
    subj_adj: np.ndarray
    obj: np.ndarray  # transitive patient, or the fact's object
    obj_num: np.ndarray
    obj_adj: np.ndarray
    loc: np.ndarray  # place of an intransitive event, or -1
    attr: np.ndarray  # predicate adjective of an attribute sentence


def _draw(table: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    return table[rng.integers(0, RESOLUTION, n)].astype(np.int64)


def _entities(w: World, cls: np.ndarray, doc: np.ndarray, topic: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """One entity per slot of class ``cls``: a topic entity of the document, or a Zipf draw."""
    out = topic[doc, cls, rng.integers(0, TOPIC_SIZE, cls.size)]
    fresh = np.flatnonzero(rng.random(cls.size) >= P_TOPICAL)
    out[fresh] = w.class_draw[cls[fresh], rng.integers(0, RESOLUTION, fresh.size)]
    return out


def _adjectives(w: World, cls: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """An adjective that fits each slot's class with probability ``p``, else -1."""
    out = np.full(cls.size, -1)
    idx = np.flatnonzero(rng.random(cls.size) < p)
    out[idx] = w.adj_draw[cls[idx], rng.integers(0, RESOLUTION, idx.size)]
    return out


def sample_content(rng: np.random.Generator, n_docs: int, world_seed: int = WORLD_SEED) -> Content:
    """Draw ``n_docs`` documents' content from the fixed world of ``world_seed`` (vectorised)."""
    w = world(world_seed)
    lo, mean = SENTENCES_PER_DOC
    doc_sentences = lo + rng.poisson(mean, n_docs)
    doc = np.repeat(np.arange(n_docs), doc_sentences)
    n = doc.size
    topic = np.empty((n_docs, 4, TOPIC_SIZE), dtype=np.int64)
    for c in range(4):
        topic[:, c] = w.class_draw[c, rng.integers(0, RESOLUTION, (n_docs, TOPIC_SIZE))]
    stype = np.searchsorted(np.cumsum(TYPE_PROBS), rng.random(n) * sum(TYPE_PROBS))
    doc_tense = rng.integers(0, N_TENSES, n_docs)
    tense = np.where(rng.random(n) < P_DOC_TENSE, doc_tense[doc], rng.integers(0, N_TENSES, n))
    verb_t = _draw(w.verb_draw_t, rng, n)
    verb_i = _draw(w.verb_draw_i, rng, n)
    rel = rng.integers(0, len(RELATIONS), n)
    rel_domain = np.array([d for d, _ in RELATIONS])
    subj_cls = np.select(
        [stype == TRANSITIVE, stype == INTRANSITIVE, stype == FACT],
        [w.vt_agent[verb_t], w.vi_agent[verb_i], rel_domain[rel]],
        rng.integers(0, 4, n),
    )
    subj = _entities(w, subj_cls, doc, topic, rng)
    obj = w.facts[rel, subj]  # facts: the world decides the object
    tr = np.flatnonzero(stype == TRANSITIVE)
    obj[tr] = _entities(w, w.vt_patient[verb_t[tr]], doc[tr], topic, rng)
    obj_cls = w.noun_class[obj]
    loc = np.full(n, -1)
    at = np.flatnonzero((stype == INTRANSITIVE) & (rng.random(n) < P_LOCATIVE))
    loc[at] = _entities(w, np.full(at.size, PLACE), doc[at], topic, rng)
    attr = w.char_adj[subj, rng.integers(0, 2, n)]
    odd = np.flatnonzero((stype == ATTRIBUTE) & (rng.random(n) >= 0.8))
    attr[odd] = _adjectives(w, subj_cls[odd], rng, 1.0)
    singular = stype == FACT
    return Content(
        doc_sentences=doc_sentences,
        stype=stype,
        tense=tense,
        verb_t=verb_t,
        verb_i=verb_i,
        rel=rel,
        subj=subj,
        subj_num=((rng.random(n) < P_PLURAL) & ~singular).astype(np.int64),
        subj_adj=_adjectives(w, subj_cls, rng, P_ADJECTIVE),
        obj=obj,
        obj_num=((rng.random(n) < P_PLURAL) & ~singular).astype(np.int64),
        obj_adj=_adjectives(w, obj_cls, rng, P_ADJECTIVE),
        loc=loc,
        attr=attr,
    )
