"""Study configs: loading, refusing bad input, the trial list, dry-run, the dependency searcher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ray.tune.search import Searcher

from sweeps.config import config_from_dict, load_config
from sweeps.dryrun import plan
from sweeps.runner import run_folder
from sweeps.searcher import DependencySearcher
from sweeps.trials import build_trials, count_by_kind
from tests.conftest import REPO
from xfer.errors import XferError

TINY = {
    "name": "t", "corpus": "synthetic",
    "languages": {"sources": ["base", "twin"], "targets": ["base", "twin", "markov"]},
    "budgets": {"pretrain": "50K", "finetune": ["5K", "10K"],
                "scratch": ["2K", "5K", "10K", "20K"]},
    "seeds": [0, 1],
    "model": {"preset": "tiny", "d_model": 32},
    "train": {"seq_len": 64, "batch_size": 4, "micro_batch_size": 4,
              "finetune": {"lr": 1.0e-3}},
}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeps.grid", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_bundled_configs_load() -> None:
    default = load_config("default")
    assert default.corpus == "synthetic" and len(default.languages.sources) >= 2
    assert min(default.scratch_budgets) < min(default.budgets.finetune)
    assert max(default.scratch_budgets) > max(default.budgets.finetune)
    paper = load_config("paper")
    assert paper.budgets.pretrain == 6_000_000_000
    assert paper.train["finetune"].kind == "finetune" and paper.train["finetune"].lr == 2e-5
    assert paper.model.d_model == 640


def test_trial_list_grid_scratch_finetune_and_seeds() -> None:
    study = config_from_dict(TINY)
    trials = build_trials(study)
    assert count_by_kind(trials) == {"pretrain": 2 * 2, "scratch": 3 * 4 * 2,
                                     "finetune": 2 * 2 * 2 * 2}  # base->twin/markov, twin->...
    keys = {t.key for t in trials}
    assert len(keys) == len(trials)
    for t in trials:
        if t.kind == "finetune":
            assert t.source != t.lang and t.parent in keys and f"-s{t.seed}" in t.parent
    assert {t.budget for t in trials if t.kind == "scratch"} == {2000, 5000, 10000, 20000}


def test_shared_pretrain_seeds() -> None:
    """pretrain_seeds [0]: one pretrain per source; every seed's finetunes start from it."""
    study = config_from_dict({**TINY, "seeds": [0, 1, 2], "pretrain_seeds": [0]})
    trials = build_trials(study)
    assert count_by_kind(trials) == {"pretrain": 2, "scratch": 3 * 4 * 3,
                                     "finetune": 2 * 2 * 2 * 3}
    pretrains = {t.key for t in trials if t.kind == "pretrain"}
    finetunes = [t for t in trials if t.kind == "finetune"]
    assert {t.parent for t in finetunes} == pretrains
    assert {t.seed for t in finetunes} == {0, 1, 2}
    assert config_from_dict(TINY).digest() != study.digest()
    with pytest.raises(XferError, match="pretrain_seeds: repeated seed"):
        config_from_dict({**TINY, "pretrain_seeds": [1, 1]})
    with pytest.raises(XferError, match="pretrain_seeds: expected a list"):
        config_from_dict({**TINY, "pretrain_seeds": 0})


@pytest.mark.parametrize(("change", "message"), [
    ({"budgts": {}}, "unknown key 'budgts' (did you mean 'budgets'?)"),
    ({"train": {"pretrain": {"lrr": 1.0}}},
     "train.pretrain: unknown key 'lrr' (did you mean 'lr'?)"),
    ({"train": {"bach_size": 4}}, "did you mean 'batch_size'?"),
    ({"model": {"d_modle": 4}}, "did you mean 'd_model'?"),
    ({"model": {"preset": "huge"}}, "model.preset: unknown model config 'huge'"),
    ({"model": {"n_layers": "two"}}, "model.n_layers: expected an integer, got 'two'"),
    ({"resources": {"cpus_per_trial": "one"}}, "resources.cpus_per_trial: expected a number"),
    ({"budgets": {"pretrain": "lots", "finetune": ["5K"]}}, "budgets.pretrain: not a byte count"),
    ({"budgets": {"pretrain": "5K", "finetune": ["10K", "5K"]}}, "must strictly increase"),
    ({"budgets": {"pretrain": "5K", "finetune": "5K"}}, "budgets.finetune: expected a list"),
    ({"seeds": ["a"]}, "seeds: expected a non-empty list of integers"),
    ({"languages": {"sources": ["bse"], "targets": ["twin"]}},
     "unknown generated language 'bse' (did you mean 'base'?)"),
    ({"analysis": {"contamination": "yes"}}, "analysis.contamination: expected true or false"),
    ({"analysis": {"interp": "cubic"}}, "analysis.interp: must be one of linear, log"),
    ({"train": {"seed": 3}}, "train: unknown key 'seed'"),
])
def test_bad_config_is_one_line_error(change: dict, message: str) -> None:
    with pytest.raises(XferError) as info:
        config_from_dict({**TINY, **change})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_cli_refuses_bad_yaml_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncorpus: synthetic\nbudgets: [1, 2\n")
    for args, message in ((["--config", str(bad), "--dry-run"], "malformed YAML at line"),
                          (["--config", "papr", "--dry-run"], "(did you mean 'paper'?)")):
        out = _cli(*args)
        assert out.returncode == 2
        assert message in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


def test_paper_dry_run_counts_and_costs() -> None:
    out = _cli("--config", "paper", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert ("3 pretrains + 60 scratch + 162 finetunes (+ pt->es: 1 pretrain + 6 finetunes) "
            "= 232 trials") in out.stdout
    assert "65,718,400 parameters" in out.stdout and "device-hours" in out.stdout
    js = json.loads(_cli("--config", "paper", "--dry-run", "--json").stdout)
    assert js["counts"] == {"pretrain": 4, "scratch": 60, "finetune": 168, "total": 232}
    assert len(js["trials"]) == 232
    assert js["total"]["train_bytes"] == sum(t["train_bytes"] for t in js["trials"])
    pre = [t for t in js["trials"] if t["kind"] == "pretrain"]
    step_bytes = 512 * 1024  # whole batches: 11,444 steps of 512 x 1024 bytes in 6e9 bytes
    assert all(t["train_bytes"] == 11_444 * step_bytes for t in pre)
    six_b = [t for t in js["trials"] if t["kind"] == "finetune" and t["budget"] == 6_000_000_000]
    assert all(t["train_bytes"] == 3 * 11_444 * step_bytes for t in six_b)  # 3 epochs at 6B
    assert js["total"]["device_hours"] > 0


def test_dry_run_follows_the_config() -> None:
    p = plan(config_from_dict(TINY))
    assert p["counts"]["total"] == len(p["trials"]) == 4 + 24 + 16


def test_changed_config_gets_a_new_run_folder(tmp_path: Path) -> None:
    a = run_folder(config_from_dict(TINY), str(tmp_path))
    b = run_folder(config_from_dict({**TINY, "seeds": [0]}), str(tmp_path))
    c = run_folder(config_from_dict({**TINY, "resources": {"cpus_per_trial": 2}}), str(tmp_path))
    d = run_folder(config_from_dict({**TINY, "train": {**TINY["train"], "keep_checkpoints": 1}}),
                   str(tmp_path))
    e = run_folder(config_from_dict({**TINY, "train": {**TINY["train"], "seq_len": 32}}),
                   str(tmp_path))
    f = run_folder(config_from_dict({**TINY, "analysis": {"interp": "log", "budget": "10K",
                                                          "contamination": False}}),
                   str(tmp_path))
    assert a != b and a == c == d and e != a  # resources and checkpointing change no result
    assert f == a  # analysis options change no trial: the same run folder is re-analysed


def _searcher(study_dict: dict, checkpoints: dict, ready: set[str], conc: int = 8):
    trials = build_trials(config_from_dict(study_dict))
    return DependencySearcher(trials, checkpoints, lambda t, c: {"key": t.key, "init": c},
                              data_ready=lambda lang: lang in ready, max_concurrent=conc)


def test_searcher_waits_for_data_and_parents_then_finishes() -> None:
    study = {**TINY, "seeds": [0], "languages": {"sources": ["base", "twin"],
                                                 "targets": ["base", "twin"]},
             "budgets": {"pretrain": "50K", "finetune": ["5K"], "scratch": ["5K"]}}
    ckpts: dict[str, str] = {}
    ready = {"base"}
    s = _searcher(study, ckpts, ready)
    got = [s.suggest(f"t{i}") for i in range(4)]
    assert [g["key"] for g in got[:2]] == ["pretrain-base-50K-s0", "scratch-base-5K-s0"]
    assert got[2:] == [None, None]  # twin's data not ready; finetunes wait for pretrains
    ready.add("twin")
    assert s.suggest("t4")["key"] == "pretrain-twin-50K-s0"
    assert s.suggest("t5")["key"] == "scratch-twin-5K-s0"
    assert s.suggest("t6") is None
    ckpts["pretrain-base-50K-s0"] = "/ckpt/base"
    s.on_trial_complete("t0", {"final": 1})
    ft = s.suggest("t7")
    assert ft == {"key": "finetune-base-twin-5K-s0", "init": "/ckpt/base"}
    for tid in ("t1", "t4", "t5", "t7"):
        s.on_trial_complete(tid, {"final": 1}, error=(tid == "t4"))  # twin's pretrain fails
    assert s.suggest("t8") == Searcher.FINISHED
    assert s.failed["finetune-twin-base-5K-s0"].startswith("skipped")


def test_searcher_respects_concurrency_and_prefers_pretrains() -> None:
    s = _searcher(TINY, {}, {"base", "twin", "markov"}, conc=2)
    first = [s.suggest("a")["key"], s.suggest("b")["key"]]
    assert first == ["pretrain-base-50K-s0", "scratch-base-20K-s0"]  # a class each, pretrain first
    assert s.suggest("c") is None


def test_searcher_starts_one_trial_of_each_class_first() -> None:
    """Pretrains go first, except that the first ready trial of each (kind, budget) class goes
    before them (the ETA times each class early); a finetune class starts once a pretrain is
    done."""
    s = _searcher(TINY, {}, {"base", "twin", "markov"}, conc=100)
    first = [s.suggest(str(i))["key"] for i in range(6)]
    assert first == ["pretrain-base-50K-s0", "scratch-base-20K-s0", "scratch-base-10K-s0",
                     "scratch-base-5K-s0", "scratch-base-2K-s0", "pretrain-base-50K-s1"]
    s.checkpoints["pretrain-base-50K-s0"] = "/ckpt"
    rest = [s.suggest(str(i))["key"] for i in range(6, 10)]
    assert rest[:2] == ["finetune-base-markov-10K-s0", "finetune-base-markov-5K-s0"]
    assert rest[2:4] == ["pretrain-twin-50K-s0", "pretrain-twin-50K-s1"]  # then pretrains again


def test_auto_precision_is_resolved_before_the_hash() -> None:
    """fp32 (cpu) and bf16 (cuda) runs of ``precision: auto`` never share a run folder; auto on
    cuda is bf16's folder."""
    from tests.faults_util import study

    def digest(device: str, precision: str) -> str:
        train = {kind: {"device": device, "precision": precision}
                 for kind in ("pretrain", "scratch", "finetune")}
        return config_from_dict(study(train=train)).digest()

    assert digest("cpu", "auto") == config_from_dict(study()).digest()
    assert digest("cuda", "auto") != digest("cpu", "auto")
    assert digest("cuda", "auto") == digest("cuda", "bf16") == digest("xla", "bf16")
    assert digest("cuda", "fp32") == digest("cpu", "fp32")


def test_finetune_of_a_pretrain_finished_without_checkpoint_fails_at_once() -> None:
    """A parent in the ledger with no checkpoint can never hand one over: its finetune fails
    with a message naming it, and the searcher finishes (Tune would otherwise ask forever)."""
    study = {**TINY, "seeds": [0], "languages": {"sources": ["base"], "targets": ["twin"]},
             "budgets": {"pretrain": "50K", "finetune": ["5K"], "scratch": ["5K"]}}
    trials = [t for t in build_trials(config_from_dict(study)) if t.kind != "pretrain"]
    s = DependencySearcher(trials, {}, lambda t, c: {"key": t.key, "init": c},
                           finished={"pretrain-base-50K-s0": {}}, max_concurrent=2)
    first = s.suggest("t0")
    assert first["key"] == "scratch-twin-5K-s0"
    s.on_trial_complete("t0", {"final": 1})
    assert s.suggest("t1") == Searcher.FINISHED
    why = s.failed["finetune-base-twin-5K-s0"]
    assert "pretrain-base-50K-s0 finished without a checkpoint" in why


def test_searcher_lets_a_bug_in_data_readiness_raise() -> None:
    """Only a data preparation failure (XferError) fails a language; anything else is a bug
    and raises instead of reading as "data preparation failed"."""
    study = {**TINY, "seeds": [0], "languages": {"sources": ["base"], "targets": ["base"]},
             "budgets": {"pretrain": "50K", "finetune": ["5K"], "scratch": ["5K"]}}
    trials = build_trials(config_from_dict(study))

    def broken(lang: str) -> bool:
        raise KeyError(lang)

    def failed(lang: str) -> bool:
        raise XferError(f"{lang}: corpus too small")

    with pytest.raises(KeyError):
        DependencySearcher(trials, {}, lambda t, c: {}, data_ready=broken).suggest("t0")
    s = DependencySearcher(trials, {}, lambda t, c: {}, data_ready=failed)
    assert s.suggest("t0") is None  # this call found the failure
    assert s.suggest("t1") == Searcher.FINISHED
    assert set(s.failed.values()) == {"data preparation failed: base: corpus too small"}


@pytest.mark.parametrize("name", ["default", "paper"])
def test_config_crosses_the_ray_boundary_typed(name):
    """A trial rebuilds the driver's typed config from param_space's plain dict, unchanged."""
    from sweeps.config import StudyConfig
    from xfer.model import ModelConfig
    from xfer.training.config import Kind, TrainConfig

    study = load_config(name)
    again = StudyConfig.from_dict(json.loads(json.dumps(study.to_dict())))
    assert again == study and again.digest() == study.digest()
    assert isinstance(again.model, ModelConfig)
    assert all(isinstance(k, Kind) and isinstance(v, TrainConfig) for k, v in again.train.items())
