"""``--dry-run``: the trial list and what it will cost, without starting Ray."""

from __future__ import annotations

import json

from sweeps.config import StudyConfig
from sweeps.estimate import device_hours, parameter_count, trial_costs, trial_hours
from sweeps.trials import TrialSpec, build_trials, count_by_kind, language_budgets, pairs
from xfer.analysis.coverage import left_out
from xfer.downstream.finetune import KEEP_CHECKPOINTS
from xfer.training.config import Kind
from xfer.units import format_budget

WEIGHT_BYTES = 4  # fp32 weights, per parameter
STEP_CHECKPOINT_BYTES = 3 * WEIGHT_BYTES  # weights + AdamW's two fp32 moments, per parameter


def disk_needed(study: StudyConfig, trials: list[TrialSpec], n_params: int) -> dict:
    """Bytes the run folder holds once every trial has finished (each checkpoint stored once):
    ``data`` (per language dev + test + its largest budget, a byte per byte), ``checkpoints``
    (per trial a best checkpoint, 4 bytes a parameter, and with ``run.keep_step_checkpoints``
    its ``keep_checkpoints`` step checkpoints, 12 bytes a parameter) and ``total``; and
    ``per_running_trial``, the step checkpoints a trial holds while it runs (deleted when it
    finishes unless kept). Logs, tables and the report are small beside these and not counted."""
    data = sum(study.data.dev_bytes + study.data.test_bytes + max(budgets)
               for budgets in language_budgets(study, trials).values())
    ckpt, running = 0, 0
    for t in trials:
        keep = (KEEP_CHECKPOINTS if t.kind == Kind.DOWNSTREAM else
                study.train[t.kind].keep_checkpoints)
        steps = n_params * keep * STEP_CHECKPOINT_BYTES
        running = max(running, steps)
        ckpt += n_params * WEIGHT_BYTES + (steps if study.run.keep_step_checkpoints else 0)
    return {"data": data, "checkpoints": ckpt, "total": data + ckpt,
            "per_running_trial": 0 if study.run.keep_step_checkpoints else running}


def plan(study: StudyConfig) -> dict:
    """The study's plan as a JSON-able dict: counts, parameters, per-trial and total cost."""
    trials = build_trials(study)
    n_params = parameter_count(study.model)
    costs = trial_costs(study, trials, n_params)
    langs = study.languages
    grid = [(s, t) for s in langs.sources for t in langs.targets if s != t]
    extra = pairs(study)[len(grid):]  # extra pairs outside the grid
    extra_sources = sorted({s for s, _ in extra} - set(study.languages.sources))
    total_flops = sum(c.flops for c in costs)
    finetuned = pairs(study)
    return {
        "name": study.name, "corpus": study.corpus, "config_hash": study.digest(),
        "model": {"name": study.model.name, "parameters": n_params},
        "counts": {**count_by_kind(trials), "total": len(trials)},
        "grid": {"sources": list(study.languages.sources), "targets": list(study.languages.targets),
                 "pairs": len(grid), "finetune_budgets": [int(b) for b in study.budgets.finetune],
                 "scratch_budgets": [int(b) for b in study.scratch_budgets],
                 "seeds": list(study.seeds)},
        "extra_pairs": {"pairs": [list(p) for p in extra], "pretrains": extra_sources,
                        "finetunes": len(extra) * len(study.budgets.finetune) * len(study.seeds)},
        "resources": {"workers_per_trial": study.resources.workers_per_trial,
                      "per_worker": study.resources.per_worker()},
        "trials": [{**c.trial.to_dict(), "train_bytes": c.train_bytes, "flops": c.flops,
                    "hours": trial_hours(c.flops, study, c.trial.kind)} for c in costs],
        "total": {"train_bytes": sum(c.train_bytes for c in costs), "flops": total_flops,
                  "device": study.estimate.device, "peak_flops": study.estimate.peak_flops,
                  "utilisation": study.estimate.utilisation,
                  "device_hours": device_hours(total_flops, study)},
        "disk_bytes": disk_needed(study, trials, n_params),
        "left_out": [p.line() for p in left_out([x for pair in finetuned for x in pair],
                                                 [t for _, t in finetuned])],
    }


def _by_kind(p: dict, kind: str) -> tuple[int, int, float, float]:
    rows = [t for t in p["trials"] if t["kind"] == kind]
    return (len(rows), sum(t["train_bytes"] for t in rows), sum(t["flops"] for t in rows),
            sum(t["hours"] for t in rows))


def render(p: dict, study: StudyConfig, max_rows: int = 40) -> str:
    """Human-readable plan: summary, per-kind totals, then the trial list."""
    c, g, x, tot = p["counts"], p["grid"], p["extra_pairs"], p["total"]
    lines = [f"study {p['name']} (config hash {p['config_hash']}), corpus {p['corpus']}",
             f"model {p['model']['name']}: {p['model']['parameters']:,} parameters",
             f"grid: {len(g['sources'])} sources x {len(g['targets'])} targets -> {g['pairs']} "
             f"pairs; finetune budgets {', '.join(format_budget(b) for b in g['finetune_budgets'])}"
             f"; scratch budgets {', '.join(format_budget(b) for b in g['scratch_budgets'])}; "
             f"seeds {g['seeds']}"]
    n_grid_pre = c["pretrain"] - len(x["pretrains"]) * len(g["seeds"])
    line = (f"trials: {n_grid_pre} pretrains + {c['scratch']} scratch + "
            f"{c['finetune'] - x['finetunes']} finetunes")
    if x["pairs"]:
        arrows = ", ".join(f"{s}->{t}" for s, t in x["pairs"])
        line += (f" (+ {arrows}: {len(x['pretrains']) * len(g['seeds'])} pretrain + "
                 f"{x['finetunes']} finetunes)")
    if c.get("downstream"):
        line += f" + {c['downstream']} downstream"
    lines.append(f"{line} = {c['total']} trials")
    lines.append("")
    lines.append(f"{'kind':<10} {'trials':>6} {'train bytes':>18} {'PFLOP':>12} "
                 f"{'device-hours':>13} {'trial-hours':>12}")
    for kind in [k for k in Kind if k != Kind.DOWNSTREAM or k in c]:
        n, b, f, h = _by_kind(p, kind)
        lines.append(f"{kind:<10} {n:>6} {b:>18,} {f / 1e15:>12,.3f} "
                     f"{device_hours(f, study):>13,.2f} {h:>12,.2f}")
    hours = sum(t["hours"] for t in p["trials"])
    lines.append(f"{'total':<10} {c['total']:>6} {tot['train_bytes']:>18,} "
                 f"{tot['flops'] / 1e15:>12,.3f} {tot['device_hours']:>13,.2f} {hours:>12,.2f}")
    lines.append(f"(device-hours on {tot['device']} at {tot['peak_flops']:.3g} FLOP/s x "
                 f"{tot['utilisation']:.0%} utilisation; FLOPs = 6N + 6·L·T·d per trained byte, "
                 f"plus evaluation)")
    res = p["resources"]
    worker = ", ".join(f"{v:g} {k}" for k, v in res["per_worker"].items() if v)
    lines.append(f"(trial-hours: wall hours of the trials one after another, each training "
                 f"trial on {res['workers_per_trial']} worker(s) of {worker}, at perfect "
                 f"scaling)")
    disk = p["disk_bytes"]
    kept = ("each trial's best and its last step checkpoints with optimiser state"
            if not disk["per_running_trial"] else "each trial's best")
    lines.append(f"disk: {_gb(disk['total'])} in the run folder once finished "
                 f"({_gb(disk['checkpoints'])} of checkpoints: {kept}; {_gb(disk['data'])} of "
                 f"prepared data)")
    if disk["per_running_trial"]:
        lines.append(f"      + up to {_gb(disk['per_running_trial'])} per trial running at once "
                     f"(its step checkpoints with optimiser state, deleted when it finishes)")
    for line in p["left_out"]:
        lines.append(f"report leaves out: {line}")
    lines.append("")
    rows = p["trials"]
    lines.append(f"{'trial':<34} {'after':<24} {'train bytes':>18} {'PFLOP':>10}")
    shown = rows if len(rows) <= max_rows else rows[: max_rows // 2] + rows[-max_rows // 2:]
    for i, t in enumerate(shown):
        if len(rows) > max_rows and i == max_rows // 2:
            lines.append(f"... {len(rows) - max_rows} more trials (--json lists all) ...")
        lines.append(f"{t['key']:<34} {t['parent'] or '-':<24} {t['train_bytes']:>18,} "
                     f"{t['flops'] / 1e15:>10,.4f}")
    return "\n".join(lines)


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def dry_run(study: StudyConfig, as_json: bool = False) -> str:
    """The text (or JSON) that ``--dry-run`` prints."""
    p = plan(study)
    return json.dumps(p, indent=1) if as_json else render(p, study)
