"""Constructed inputs for the claims tests: per-seed rows shaped like the paper's Table 2, and
correlation cells drawn at a chosen ρ."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xfer.analysis import claims
from xfer.analysis.claims import claims_table
from xfer.analysis.premium import premium_of

TARGETS = ["ar", "de", "en", "es", "fi", "id", "ja", "ko", "ru", "zh"]
BUDGETS = [1500, 4000, 12000]
OFFSETS = np.array([-1.0, 0.0, 1.0])  # per-seed deviations, scaled by ``spread``


def per_seed_rows(dt: dict[tuple[str, str], float], spread: float = 0.02, alpha: float = 0.5,
          offsets: np.ndarray = OFFSETS) -> pd.DataFrame:
    """Per-seed rows: D_T (MiB) = dt[pair] · (1 + spread · offset[seed]) · (budget/1500)^alpha."""
    out = []
    for (source, target), base in dt.items():
        for budget in BUDGETS:
            for seed, off in enumerate(offsets):
                value = base * (1 + spread * off) * (budget / BUDGETS[0]) ** alpha
                out.append({"kind": "finetune", "init": source, "target": target,
                            "budget": budget, "seed": seed, "perplexity": 3.0,
                            "d_t_mib": value, "d_t": value * 2**20, "bound": "exact",
                            "d_t_en_mib": value / premium_of(target)})
    return pd.DataFrame(out)


def paper_like() -> dict[tuple[str, str], float]:
    dt = {(s, t): v for t, row in claims.PAPER_DT.items() for s, v in row.items()}
    dt[("pt", "es")] = claims.PAPER_ES["pt"]
    return dt


def claims_by_name(rows: pd.DataFrame, corr: pd.DataFrame | None = None) -> pd.DataFrame:
    return claims_table(rows, corr).set_index("claim")


def drawn_corr(rho: float, pairs: int = 28, seed: int = 0) -> pd.DataFrame:
    from xfer.analysis.claims_sim import draw_corr

    return draw_corr(np.random.default_rng(seed), rho)
