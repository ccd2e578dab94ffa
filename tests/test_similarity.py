"""URIEL distances from lang2vec's data, checked against URIEL+ (an independent implementation)."""

from __future__ import annotations

import json

import pytest

from xfer.analysis.similarity import DISTANCE_KINDS, distance, distances, has_entry, to_iso639_3
from xfer.cli import main
from xfer.errors import XferError

PAIRS = [("en", "de"), ("en", "zh"), ("ru", "ja"), ("ar", "fi"), ("es", "ko")]


@pytest.fixture(scope="module")
def uriel_plus():
    from urielplus import urielplus

    return urielplus.URIELPlus()


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_distances_match_urielplus(uriel_plus, a, b):
    ours = distances(a, b)
    for kind in DISTANCE_KINDS:
        theirs = uriel_plus.new_distance(kind, to_iso639_3(a), to_iso639_3(b))
        assert ours[kind] == pytest.approx(theirs, abs=6e-5), kind  # URIEL+ rounds to 4 digits


def test_distance_properties():
    assert distance("featural", "en", "en") == pytest.approx(0.0, abs=1e-7)
    assert distance("geographic", "en", "de") < distance("geographic", "en", "zh")
    assert distance("genetic", "en", "de") < distance("genetic", "en", "zh") == pytest.approx(1.0)
    assert distances("de", "en") == pytest.approx(distances("en", "de"))


def test_codes():
    assert [to_iso639_3(c) for c in ("zh", "ar", "en", "eng")] == ["zho", "ara", "eng", "eng"]
    assert has_entry("fi") and not has_entry("syn-a")
    with pytest.raises(XferError, match="xx"):
        distances("en", "xx")


def test_cli(capsys):
    assert main(["distance", "en", "de", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(DISTANCE_KINDS) <= set(out)
    assert main(["distance", "en", "qq"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["xfer distance: error: unknown language code for lang2vec/URIEL: 'qq'"]
