"""The claims' error rates, fast: simulated studies at the small study's design through the
claims' own functions (the full table: ``python bench/claims.py``). At the edge of each claim's
region *supported* stays near α; under the paper-shaped alternative *not supported* stays near
zero and *supported* is reachable. Seeded, so the counts are the same every run."""

from __future__ import annotations

import pytest

from xfer.analysis import claims_sim

STUDIES = 40
NOISE = 0.3  # seed standard deviation / mean |D_T|
# 6 or more of 40 studies (a share above 0.125) would be p < 0.02 at a true 5%
CEILING = 0.125


def _scenario(claim: str, kind: str) -> claims_sim.Scenario:
    return next(s for s in claims_sim.SCENARIOS if s.claim == claim and s.kind == kind)


@pytest.mark.parametrize("claim", ["comparable", "stands out", "pt→es", "commutative",
                                   "power-law form", "α near 0.18"])
def test_edge_and_paper_rates(claim: str) -> None:
    supported, _ = claims_sim.rates(_scenario(claim, "null"), NOISE, STUDIES, seed=11)
    assert supported <= CEILING
    _, refuted = claims_sim.rates(_scenario(claim, "paper"), NOISE, STUDIES, seed=12)
    assert refuted <= CEILING
    power, _ = claims_sim.rates(_scenario(claim, "paper"), 0.1, 20, seed=13)
    assert power >= 0.25  # reachable: at low noise the paper's pattern is often supported


def test_symmetric_pairs_are_refuted_and_equal_sources_do_not_stand_out() -> None:
    supported, refuted = claims_sim.rates(_scenario("commutative", "symmetric"), 0.1, 30)
    assert supported == 0 and refuted >= 0.3
    supported, _ = claims_sim.rates(_scenario("stands out", "equal"), NOISE, STUDIES, seed=13)
    assert supported <= CEILING


def test_correlations_never_claim_beyond_their_interval() -> None:
    for kind in ("null", "paper"):
        for scenario in (s for s in claims_sim.SCENARIOS
                         if s.claim in ("contamination", "typology") and s.kind == kind):
            supported, refuted = claims_sim.rates(scenario, NOISE, 15, seed=14)
            assert supported <= CEILING and refuted <= CEILING
