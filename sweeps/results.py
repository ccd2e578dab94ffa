"""After the trials: the results table, the report, and where the time went."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from sweeps.config import StudyConfig
from sweeps.ledger import Ledger, write_results
from sweeps.log import log
from sweeps.progress import format_duration
from xfer.analysis.runfolder import declared_truth, language_notes
from xfer.io import atomic_write_bytes


def verdict_section(report: Path) -> list[str]:
    """The ground-truth verdicts written beside ``report`` (one console line each), if any."""
    path = report.parent / "ground_truth_verdicts.csv"
    if not path.is_file():
        return []
    import pandas as pd

    from xfer.analysis.ground_truth import verdict_lines

    return verdict_lines(pd.read_csv(path))


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals (seconds with at least one trial running)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def timing(rows: list[dict], started: float, trials_done: float, slots: int) -> dict:
    """Where the driver's time went between ``started`` and ``trials_done`` (epoch seconds).

    ``outside_trials_s``: no trial running (Ray start-up, data preparation, scheduling gaps);
    ``slot_utilisation``: trial-seconds / (wall x concurrent slots).
    """
    spans = [(float(r["started_at"]), float(r["ended_at"])) for r in rows
             if r.get("started_at") and r.get("ended_at") and float(r["started_at"]) >= started]
    wall = trials_done - started
    busy = busy_seconds(spans)
    trial_s = sum(b - a for a, b in spans)
    return {"wall_s": wall, "trials": len(spans), "busy_s": busy,
            "outside_trials_s": wall - busy, "outside_share": (wall - busy) / wall if wall else 0,
            "before_first_trial_s": min((a for a, _ in spans), default=trials_done) - started,
            "trial_seconds": trial_s, "slots": slots,
            "slot_utilisation": trial_s / (wall * slots) if wall and slots else 0}


def dt_section(report: Path) -> str:
    """The report's headline D_T table (its first section mentioning D_T), for the console."""
    text = report.read_text(encoding="utf-8")
    sections = re.split(r"(?m)^(?=#{1,3} )", text)
    for section in sections:
        if section and "D_T" in section.splitlines()[0]:
            return section.strip()
    for section in sections:
        if "D_T" in section:
            return section.strip()
    return ""


def downstream_results(ledger: Ledger, run_dir: Path) -> dict[str, str]:
    """Write ``downstream.parquet`` and return the report's downstream section (if any)."""
    import pandas as pd

    from sweeps.ledger import DOWNSTREAM_COLUMNS
    from xfer.downstream.table import report_section

    rows = ledger.downstream_rows()
    if not rows:
        return {}
    write_results(pd.DataFrame(rows, columns=DOWNSTREAM_COLUMNS), run_dir / "downstream.parquet")
    return report_section(rows)


def finish(study: StudyConfig, run_dir: Path, ledger: Ledger, started: float,
           slots: int = 1) -> Path:
    """Write results.parquet and the report; print where they are and the D_T table."""
    from xfer.analysis.analyse import analyse

    trials_done = time.time()
    frame = ledger.table()
    results = write_results(frame, run_dir / "results.parquet")
    extra = downstream_results(ledger, run_dir)
    report = analyse(frame, run_dir / "report", budget=study.analysis.budget,
                     data_dir=run_dir / "data" if study.analysis.contamination else None,
                     lid_model=Path(study.analysis.lid_model) if study.analysis.lid_model else None,
                     language_notes=language_notes(study.to_dict()), extra_sections=extra or None,
                     interp=study.analysis.interp, truth=declared_truth(study.to_dict()))
    t = timing(list(ledger.rows.values()), started, trials_done, slots)
    t["analysis_s"] = time.time() - trials_done
    t["load_average_1_5_15"] = list(os.getloadavg())  # other work on the machine slows trials
    t["total_s"] = time.time() - started
    atomic_write_bytes(run_dir / "timing.json", json.dumps(t, indent=1).encode())
    log.info(f"results: {results}")
    log.info(f"report:  {report}")
    if t["trials"]:
        log.info(f"wall {format_duration(t['total_s'])}: trials {format_duration(t['busy_s'])}"
                 f", outside trials {format_duration(t['outside_trials_s'])} "
              f"({t['outside_share']:.0%}; first trial after "
              f"{format_duration(t['before_first_trial_s'])}), analysis "
              f"{format_duration(t['analysis_s'])}; slot utilisation {t['slot_utilisation']:.0%}"
              f" of {slots}; load average {t['load_average_1_5_15'][2]:.1f}")
    table = dt_section(report)
    if table:
        print()
        print(table)
    verdicts = verdict_section(report)
    if verdicts:
        print("\nGround truth (does D_T fall as divergence from base grows, with the control "
              "below? one-sided tests over the seeds, Holm-adjusted; the report's first "
              "section):")
        for line in verdicts:
            print(f"  {line}")
    return report
