"""Every bad input at every entry point, as a table.

Each row runs the real command (``xfer prepare|train|analyse|lid|distance|premium``, ``python -m
sweeps.grid``, a study YAML) in a subprocess and asserts: a non-zero exit, no traceback, exactly
one line on stderr of the form ``<prog>: error: ...`` naming the offending thing (a regex per row),
and nothing written that looks finished where the row says so. The test counts its rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from tests.faults_util import REPO, XFER, ForkServer, grid_env, study, write_yaml

PWNED = Path("/tmp/xfer-bad-input-pwned")  # a payload that ran would create this


@dataclass(frozen=True)
class Row:
    """One bad input: ``argv`` (with ``{fx}`` placeholders filled from the fixture folders),
    the regex the one-line error must match, and an optional file the row writes first."""

    name: str
    argv: tuple[str, ...]
    expect: str
    files: dict[str, object] = field(default_factory=dict)  # relative path -> YAML data or text


def X(name: str, *argv: str, expect: str, files: dict | None = None) -> Row:
    return Row(name, ("xfer", *argv), expect, files or {})


def G(name: str, *argv: str, expect: str, files: dict | None = None) -> Row:
    return Row(name, ("grid", *argv), expect, files or {})


def C(name: str, config: object, expect: str) -> Row:
    """A study config (YAML data, or raw text when a str) run through ``--dry-run``."""
    return Row(name, ("grid", "--config", "{tmp}/bad.yaml", "--dry-run"), expect,
               {"bad.yaml": config})


TRAIN = ("train", "--data", "{data}", "--lang", "base", "--budget", "4K", "--out", "{tmp}/run",
         "--seq-len", "64", "--batch-size", "4", "--micro-batch-size", "4", "--threads", "1")
PREP = ("prepare", "--corpus", "synthetic", "--lang", "base", "--dev-bytes", "2K",
        "--test-bytes", "2K", "--no-progress")
GOOD_ROWS = ("init,target,budget,perplexity\nscratch,a,1000,9.0\nscratch,a,2000,8.0\n"
             "b,a,1000,8.5\n")

ROWS: list[Row] = [
    # ---- xfer prepare
    X("prepare: zero budget", *PREP, "--budgets", "0", "--out", "{tmp}/d", expect=r"'0'"),
    X("prepare: negative budget", *PREP, "--budgets", "-5K", "--out", "{tmp}/d",
      expect=r"-5K|budget"),
    X("prepare: budgets not increasing", *PREP, "--budgets", "8K,4K", "--out", "{tmp}/d",
      expect=r"increas"),
    X("prepare: budget not a number", *PREP, "--budgets", "lots", "--out", "{tmp}/d",
      expect=r"lots"),
    X("prepare: zero dev bytes", *PREP[:-5], "--dev-bytes", "0", "--test-bytes", "2K",
      "--budgets", "4K", "--out", "{tmp}/d", expect=r"dev|0"),
    X("prepare: unknown generated language", "prepare", "--corpus", "synthetic", "--lang", "bsae",
      "--budgets", "4K", "--out", "{tmp}/d", expect=r"bsae"),
    X("prepare: language code with a path", "prepare", "--corpus", "synthetic", "--lang",
      "../esc", "--budgets", "4K", "--out", "{tmp}/d", expect=r"--lang: '\.\./esc'"),
    X("prepare: corpus folder missing", "prepare", "--corpus", "{tmp}/nocorpus", "--lang", "en",
      "--budgets", "4K", "--out", "{tmp}/d", expect=r"nocorpus"),
    X("prepare: negative seed", *PREP, "--budgets", "4K", "--seed", "-1", "--out", "{tmp}/d",
      expect=r"seed"),
    X("prepare: language twice", *PREP, "--lang", "base", "--budgets", "4K", "--out", "{tmp}/d",
      expect=r"twice|base"),
    X("prepare: output is a file", *PREP, "--budgets", "4K", "--out", "{tmp}/afile",
      expect=r"afile", files={"afile": "x"}),
    X("prepare: folder made with other settings", *PREP, "--budgets", "4K,9K", "--out", "{data}",
      expect=r"different settings"),
    X("prepare: folder without manifest", *PREP, "--budgets", "4K", "--out", "{tmp}/half",
      expect=r"manifest", files={"half/base/train.bin": "x"}),
    # ---- xfer train
    X("train: unknown model config", *TRAIN, "--model", "huge", expect=r"huge"),
    X("train: language not prepared", *TRAIN[:4], "twin", *TRAIN[5:], expect=r"twin"),
    X("train: budget not prepared", *TRAIN[:6], "3K", *TRAIN[7:], expect=r"3000|3K"),
    X("train: zero budget", *TRAIN[:6], "0", *TRAIN[7:], expect=r"budget|0"),
    X("train: data folder missing", "train", "--data", "{tmp}/nodata", *TRAIN[3:],
      expect=r"nodata|base"),
    X("train: lr not a number", *TRAIN, "--lr", "fast", expect=r"lr.*fast"),
    X("train: zero batch size", *TRAIN, "--batch-size", "0", expect=r"batch_size"),
    X("train: negative epochs", *TRAIN, "--epochs", "-2", expect=r"epochs"),
    X("train: unknown device", *TRAIN, "--device", "quantum", expect=r"quantum"),
    X("train: unknown xla mode", *TRAIN, "--device", "xla:ring", expect=r"xla:ring.*xla:spmd"),
    X("train: init checkpoint missing", *TRAIN, "--init", "{tmp}/nockpt", expect=r"nockpt"),
    X("train: init checkpoint corrupt (garbage model.pt)", *TRAIN, "--init", "{ckpt_garbage}",
      expect=r"model\.pt|corrupt"),
    X("train: init checkpoint truncated", *TRAIN, "--init", "{ckpt_truncated}",
      expect=r"model\.pt|corrupt"),
    X("train: init checkpoint with a pickled object", *TRAIN, "--init", "{ckpt_pickle}",
      expect=r"model\.pt|weights"),
    X("train: init checkpoint meta.json corrupt", *TRAIN, "--init", "{ckpt_badmeta}",
      expect=r"meta\.json|checkpoint"),
    X("train: init checkpoint of another model", *TRAIN, "--init", "{ckpt_d32}",
      expect=r"model config"),
    X("train: init checkpoint with wrong tensors", *TRAIN, "--init", "{ckpt_wrong}",
      expect=r"model\.pt"),
    X("train: resume checkpoint corrupt", *TRAIN, "--kind", "scratch", "--max-steps", "2",
      "--resume-from", "{ckpt_garbage}",
      expect=r"model\.pt|corrupt"),
    X("train: manifest not JSON", *TRAIN[:2], "{data_badmanifest}", *TRAIN[3:],
      expect=r"manifest"),
    X("train: token file truncated", *TRAIN[:2], "{data_truncated}", *TRAIN[3:],
      expect=r"train\.bin"),
    X("train: token file corrupt (sha256 mismatch)", *TRAIN[:2], "{data_flipped}", *TRAIN[3:],
      expect=r"sha256|train\.bin"),
    # ---- xfer analyse
    X("analyse: results table missing", "analyse", "{tmp}/none.csv", "--out", "{tmp}/a",
      expect=r"none\.csv"),
    X("analyse: empty results table", "analyse", "{tmp}/empty.csv", "--out", "{tmp}/a",
      expect=r"empty|no rows|empty\.csv", files={"empty.csv": "init,target,budget,perplexity\n"}),
    X("analyse: zero-byte results file", "analyse", "{tmp}/zero.csv", "--out", "{tmp}/a",
      expect=r"zero\.csv", files={"zero.csv": ""}),
    X("analyse: corrupt parquet", "analyse", "{tmp}/bad.parquet", "--out", "{tmp}/a",
      expect=r"bad\.parquet", files={"bad.parquet": "not parquet at all"}),
    X("analyse: wrong file type", "analyse", "{tmp}/r.txt", "--out", "{tmp}/a",
      expect=r"\.csv or \.parquet", files={"r.txt": GOOD_ROWS}),
    X("analyse: required column missing", "analyse", "{tmp}/nocol.csv", "--out", "{tmp}/a",
      expect=r"perplexity", files={"nocol.csv": "init,target,budget\nscratch,a,1000\n"}),
    X("analyse: perplexity not a number", "analyse", "{tmp}/text.csv", "--out", "{tmp}/a",
      expect=r"perplexity", files={"text.csv": GOOD_ROWS.replace("9.0", "high")}),
    X("analyse: negative budget", "analyse", "{tmp}/neg.csv", "--out", "{tmp}/a",
      expect=r"budget", files={"neg.csv": GOOD_ROWS.replace("1000", "-1000")}),
    X("analyse: unknown --budget", "analyse", "{tmp}/ok.csv", "--out", "{tmp}/a", "--budget",
      "7K", expect=r"7000|7K", files={"ok.csv": GOOD_ROWS}),
    X("analyse: --budget not a number", "analyse", "{tmp}/ok.csv", "--out", "{tmp}/a",
      "--budget", "big", expect=r"big", files={"ok.csv": GOOD_ROWS}),
    X("analyse: results table without --out", "analyse", "{tmp}/ok.csv",
      expect=r"--out", files={"ok.csv": GOOD_ROWS}),
    X("analyse: folder that is no run folder", "analyse", "{tmp}", expect=r"results\.parquet"),
    # ---- xfer premium
    X("premium: parallel folder missing", "premium", "ru", "--parallel", "{tmp}/nopar",
      expect=r"nopar"),
    X("premium: language without parallel text", "premium", "xx", "--parallel", "{tmp}/par",
      expect=r"'xx'", files={"par/en.txt": "Hello.\n"}),
    X("premium: files not aligned", "premium", "de", "--parallel", "{tmp}/par",
      expect=r"not aligned", files={"par/en.txt": "Hello.\nBye.\n", "par/de.txt": "Hallo.\n"}),
    X("premium: --write without --parallel", "premium", "all", "--write", "{tmp}/p.json",
      expect=r"--parallel"),
    # ---- xfer lid
    X("lid: file missing", "lid", "{tmp}/nofile.txt", expect=r"nofile\.txt"),
    X("lid: threshold above 1", "lid", "{tmp}/t.txt", "--threshold", "2",
      expect=r"threshold", files={"t.txt": "hello world this is english text\n"}),
    X("lid: language-ID model missing", "lid", "{tmp}/t.txt", "--lid-model", "{tmp}/nolid.bin",
      expect=r"nolid\.bin", files={"t.txt": "hello world this is english text\n"}),
    X("lid: language-ID model corrupt", "lid", "{tmp}/t.txt", "--lid-model", "{tmp}/lid.bin",
      expect=r"lid\.bin", files={"t.txt": "hello world this is english text\n",
                                 "lid.bin": "garbage"}),
    X("lid: file is a folder", "lid", "{tmp}", expect=r"a folder, not a regular file"),
    # ---- xfer distance
    X("distance: unknown code", "distance", "en", "qq", expect=r"qq"),
    X("distance: unknown 3-letter code", "distance", "zzz", "en", expect=r"zzz"),
    X("distance: empty code", "distance", "", "en", expect=r"''|code"),
    # ---- python -m sweeps.grid (command line)
    G("grid: config file missing", "--config", "{tmp}/nothere.yaml", "--dry-run",
      expect=r"nothere\.yaml"),
    G("grid: unknown bundled config", "--config", "papr", "--dry-run", expect=r"'paper'"),
    G("grid: --json without --dry-run", "--json", expect=r"--json"),
    G("grid: --max-concurrent not a number", "--max-concurrent", "many", expect=r"many"),
    G("grid: --verbose out of range", "--verbose", "7", expect=r"7"),
    # ---- the study YAML (through python -m sweeps.grid --dry-run)
    C("yaml: malformed", "name: x\nbudgets: [1K,\n", r"malformed YAML"),
    C("yaml: not a mapping", "- a\n- b\n", r"mapping"),
    C("yaml: empty file", "", r"mapping|NoneType"),
    C("yaml: not UTF-8", b"name: \xff\xfe\n".decode("latin-1"), r"UTF-8|malformed"),
    C("yaml: python object tag", "name: !!python/object/apply:os.system ['touch "
      f"{PWNED}']\ncorpus: synthetic\n", r"malformed YAML|python"),
    C("yaml: unknown top-level key", study(budget={"pretrain": "20K"}), r"'budget'.*'budgets'"),
    C("yaml: unknown nested key", study(train={"pretrain": {"lrr": 0.1}}), r"'lrr'.*'lr'"),
    C("yaml: unknown model key", study(model={"d_modle": 32}), r"'d_modle'.*'d_model'"),
    C("yaml: missing budgets", {k: v for k, v in study().items() if k != "budgets"},
      r"budgets"),
    C("yaml: wrong type seeds", study(seeds="zero"), r"seeds"),
    C("yaml: wrong type budget", study(budgets={"finetune": "4K"}), r"finetune"),
    C("yaml: wrong type lr", study(train={"pretrain": {"lr": "fast"}}), r"lr"),
    C("yaml: wrong type epochs", study(train={"scratch": {"epochs": 1.5}}), r"epochs"),
    C("yaml: zero budget", study(budgets={"finetune": [0]}), r"finetune|budget"),
    C("yaml: negative budget", study(budgets={"finetune": ["-4K"]}), r"finetune|budget"),
    C("yaml: zero pretrain budget", study(budgets={"pretrain": 0}), r"pretrain|budget"),
    C("yaml: budgets not increasing", study(budgets={"scratch": ["8K", "2K"]}), r"increase"),
    C("yaml: unknown language", study(languages={"sources": ["base", "tiwn"]}), r"'tiwn'"),
    C("yaml: language code with a path", study(corpus="mc4", languages={
        "sources": ["../../evil"], "targets": ["en"]}), r"languages: '\.\./\.\./evil'"),
    C("yaml: language code with a slash", study(corpus="mc4", languages={
        "sources": ["en"], "targets": ["de"], "extra_pairs": [["a/b", "en"]]}),
      r"languages: 'a/b'"),
    C("yaml: repeated language", study(languages={"targets": ["base", "base"]}), r"repeated"),
    C("yaml: unknown model config", study(model={"preset": "tinny"}), r"'tinny'.*'tiny'"),
    C("yaml: negative model width", study(model={"d_model": -32}), r"d_model"),
    C("yaml: zero batch size", study(train={"batch_size": 0}), r"batch_size"),
    C("yaml: negative seed", study(seeds=[-1]), r"seed"),
    C("yaml: zero cpus per trial", study(resources={"cpus_per_trial": 0}), r"cpus_per_trial"),
    C("yaml: negative max_failures", study(run={"max_failures": -5}), r"max_failures"),
    C("yaml: corpus folder missing", study(corpus="/nonexistent/corpus"), r"nonexistent"),
    C("yaml: run name escapes the output folder", study(name="../../escape"), r"name"),
    C("yaml: shell metacharacters in name", study(name=f"x; touch {PWNED}"), r"name"),
    C("yaml: downstream unknown key", study(downstream={"task": "/tmp", "epoch": 2}),
      r"'epoch'.*'epochs'"),
    C("yaml: downstream task folder missing", study(downstream={"task": "/nonexistent/task"}),
      r"nonexistent"),
    C("yaml: downstream without task or construct", study(downstream={"epochs": 2}),
      r"task|construct"),
    C("yaml: downstream construct from markov", study(downstream={"construct": {
        "corpus": "synthetic", "premise_lang": "markov", "hypothesis_lang": "base"}}),
      r"markov"),
]


def _params() -> list:
    return [pytest.param(r, id=r.name) for r in ROWS]


def _fill(arg: str, where: dict[str, Path]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(where[m.group(1)]), arg)


class _Evil:
    """Pickles to a call of os.system: a checkpoint that runs code if unpickled freely."""

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {PWNED}",))


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A prepared dataset, a trained checkpoint, and corrupted copies of each."""
    from xfer.data import prepare
    from xfer.model import MODEL_CONFIGS, ByteLM, ModelConfig
    from xfer.training.checkpoint import save_checkpoint
    from xfer.training.config import TrainConfig
    from xfer.training.loop import run

    root = tmp_path_factory.mktemp("bad")
    data = root / "data"
    prepare("synthetic", ["base"], [4000, 8000], 2000, 2000, 0, data)
    cfg = ModelConfig(name="d32", d_model=32, n_layers=1, n_heads=1, d_head=32, d_ff=64)
    run(MODEL_CONFIGS["tiny"], TrainConfig(kind="scratch", seq_len=64, batch_size=4,
                                           micro_batch_size=4, max_steps=2, threads=1),
        data, "base", 4000, root / "trained")
    out = {"data": data, "ckpt": root / "trained" / "best"}
    d32 = ByteLM(cfg)
    out["ckpt_d32"] = save_checkpoint(root / "ckpt_d32", d32, {"model": cfg.to_dict()})

    def copy_ckpt(name: str) -> Path:
        dst = root / name
        shutil.copytree(out["ckpt"], dst)
        out[name] = dst
        return dst

    (copy_ckpt("ckpt_garbage") / "model.pt").write_bytes(os.urandom(3000))
    model_pt = copy_ckpt("ckpt_truncated") / "model.pt"
    model_pt.write_bytes(model_pt.read_bytes()[: model_pt.stat().st_size // 2])
    torch.save({"weight": _Evil()}, copy_ckpt("ckpt_pickle") / "model.pt")
    (copy_ckpt("ckpt_badmeta") / "meta.json").write_text("{not json")
    torch.save(d32.state_dict(), copy_ckpt("ckpt_wrong") / "model.pt")  # tensors of another shape

    def copy_data(name: str) -> Path:
        dst = root / name
        shutil.copytree(data, dst)
        out[name] = dst
        return dst

    (copy_data("data_badmanifest") / "base" / "manifest.json").write_text("{oops")
    train_bin = copy_data("data_truncated") / "base" / "train.bin"
    train_bin.write_bytes(train_bin.read_bytes()[:-100])
    flipped = copy_data("data_flipped") / "base" / "train.bin"
    raw = bytearray(flipped.read_bytes())
    raw[100] = (raw[100] + 1) % 255  # same size, one byte changed (never 0xFF)
    flipped.write_bytes(bytes(raw))
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[ForkServer]:
    """One process with the commands' modules imported; every row runs in a fork of it."""
    srv = ForkServer()
    try:
        yield srv
    finally:
        srv.close()


def _prog(row: Row) -> str:
    return f"xfer {row.argv[1]}" if row.argv[0] == "xfer" else "python -m sweeps.grid"


def test_table_has_every_entry_point_and_counts_rows() -> None:
    kinds = {r.argv[1] if r.argv[0] == "xfer" else "grid" for r in ROWS}
    assert kinds == {"prepare", "train", "analyse", "lid", "distance", "premium", "grid"}
    assert len({r.name for r in ROWS}) == len(ROWS)
    print(f"bad inputs in the table: {len(ROWS)}")
    assert len(ROWS) == 97


@pytest.mark.parametrize("row", _params())
def test_bad_input(row: Row, fx: dict[str, Path], server: ForkServer, tmp_path: Path) -> None:
    where = {**fx, "tmp": tmp_path}
    for rel, content in row.files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="latin-1" if "\xff" in content else "utf-8")
        else:
            write_yaml(path, content)
    argv = [_fill(a, where) for a in row.argv[1:]]
    prog = _prog(row)
    PWNED.unlink(missing_ok=True)
    proc = server.run(row.argv[0], argv, tmp_path)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0, f"exit 0 for a bad input; stdout: {proc.stdout[-500:]}"
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert re.search(row.expect, lines[0]), f"{lines[0]!r} does not match {row.expect!r}"
    assert not PWNED.exists(), "a config value or checkpoint ran a shell command"
    assert not (tmp_path / "run" / "result.json").exists()
    if row.name.startswith("yaml: run name escapes"):
        assert not (tmp_path.parent / "escape").exists()


def test_corrupt_manifest_json_is_refused_by_prepare(fx: dict[str, Path]) -> None:
    """``xfer prepare`` on an existing folder whose manifest is broken names the manifest."""
    proc = subprocess.run([XFER, *PREP, "--budgets", "4000,8000", "--out",
                           str(fx["data_badmanifest"])], capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=grid_env())
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "manifest" in proc.stderr.strip().splitlines()[-1]


def test_good_inputs_pass(fx: dict[str, Path], tmp_path: Path) -> None:
    """The fixture's clean dataset and checkpoint work, so the rows above fail for their fault."""
    argv = [_fill(a, {**fx, "tmp": tmp_path}) for a in TRAIN[1:]]
    proc = subprocess.run([XFER, "train", *argv, "--epochs", "1", "--max-steps", "2"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=grid_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["test_perplexity"] > 1
    write_yaml(tmp_path / "ok.yaml", study())
    dry = subprocess.run([sys.executable, "-m", "sweeps.grid", "--config",
                          str(tmp_path / "ok.yaml"), "--dry-run"], capture_output=True,
                         text=True, timeout=120, cwd=REPO, env=grid_env())
    assert dry.returncode == 0, dry.stderr[-2000:]
