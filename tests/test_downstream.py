"""Downstream check: constructed FLORES-200 task, classifier training (scratch and a pretrained-like
init), resume, bad inputs, table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from sweeps.downstream import synthetic_aligned_lines
from xfer.data.vocab import EOS_ID
from xfer.downstream import (
    DownstreamConfig,
    PairClassifier,
    encode_pairs,
    load_task,
    run,
    truncate_pair,
)
from xfer.downstream.table import downstream_table
from xfer.downstream.tasks import build_translation_task
from xfer.errors import XferError
from xfer.model import ByteLM, ModelConfig
from xfer.training.checkpoint import save_checkpoint
from xfer.training.loop import Callback

TINY = ModelConfig(name="ds-tiny", d_model=64, n_layers=2, n_heads=2, d_head=32, d_ff=256)


@pytest.fixture(scope="module")
def flores(shared_corpus: Path) -> Path:
    return shared_corpus / "parallel" / "flores200"


def read_split(task: Path, split: str) -> pd.DataFrame:
    return pd.read_json(task / f"{split}.jsonl", lines=True)


def test_translation_task_is_balanced_correct_deterministic_and_leak_free(flores, tmp_path):
    task = build_translation_task(flores, "en", "de", 300, 101, 7, tmp_path / "a")
    again = build_translation_task(flores, "en", "de", 300, 101, 7, tmp_path / "b")
    en = (flores / "en.txt").read_text(encoding="utf-8").splitlines()
    de = (flores / "de.txt").read_text(encoding="utf-8").splitlines()
    truth = dict(zip(en, de, strict=True))
    sentences = {}
    for split, n in (("train", 300), ("validation", 101)):
        frame = read_split(task, split)
        assert (task / f"{split}.jsonl").read_bytes() == (again / f"{split}.jsonl").read_bytes()
        assert len(frame) == n and frame["premise"].is_unique
        assert abs(int(frame["label"].sum()) - n / 2) <= 0.5  # balanced
        for premise, hypothesis, label in frame.itertuples(index=False):
            assert (truth[premise] == hypothesis) == bool(label)
        sentences[split] = set(frame["premise"]) | set(frame["hypothesis"])
    assert not sentences["train"] & sentences["validation"]
    other = read_split(build_translation_task(flores, "en", "de", 300, 101, 8, tmp_path / "c"),
                       "train")
    assert not other.equals(read_split(task, "train"))
    # a second call is a no-op; other settings in the same folder are refused
    assert build_translation_task(flores, "en", "de", 300, 101, 7, task) == task
    with pytest.raises(XferError, match="other settings"):
        build_translation_task(flores, "en", "de", 300, 100, 7, task)
    with pytest.raises(XferError, match="need as many lines"):
        build_translation_task(flores, "en", "de", 2000, 100, 7, tmp_path / "d")
    with pytest.raises(XferError, match="no aligned file"):
        build_translation_task(flores, "en", "xx", 10, 10, 7, tmp_path / "e")
    assert not (tmp_path / "d").exists() and not (tmp_path / "e").exists()


def test_pair_encoding_and_truncation():
    assert truncate_pair(3, 4, 10) == (3, 4)
    assert truncate_pair(20, 20, 10) == (5, 5)
    assert truncate_pair(2, 20, 10) == (2, 8)
    assert truncate_pair(20, 3, 10) == (7, 3)
    frame = pd.DataFrame({"premise": ["ab", "é" * 10], "hypothesis": ["c", "xyz" * 5],
                          "label": [0, 1]})
    ids, lengths, labels = encode_pairs(frame, 12)
    assert ids.shape == (2, 12) and lengths.tolist() == [5, 12] and labels.tolist() == [0, 1]
    assert ids[0, :5].tolist() == [ord("a") + 3, ord("b") + 3, EOS_ID, ord("c") + 3, EOS_ID]
    assert ids[1, 5].item() == EOS_ID and ids[1, 11].item() == EOS_ID
    # the pooled position sees the whole pair: changing the hypothesis changes the logits
    net = PairClassifier(TINY).eval()
    other = ids.clone()
    other[0, 3] += 1
    assert not torch.allclose(net(ids, lengths)[0], net(other, lengths)[0])


class Recorder(Callback):
    def __init__(self, fail_after: int | None = None) -> None:
        self.evals, self.fail_after = [], fail_after

    def on_eval(self, metrics: dict, checkpoint_dir: Path | None) -> None:
        self.evals.append((metrics, checkpoint_dir))
        if self.fail_after is not None and metrics["epoch"] >= self.fail_after:
            raise RuntimeError("simulated crash")


def test_copy_detection_goes_from_chance_to_well_above(flores, tmp_path):
    # Recipe: pairs within one language (positives are the same sentence), 7 bytes a side
    # (max_len 16), so the premise always fills its half and a copy sits at a fixed offset.
    task = build_translation_task(flores, "en", "en", 1000, 200, 0, tmp_path / "task")
    cfg = DownstreamConfig(task=str(task), language="en", epochs=8, lr=2e-3, batch_size=32,
                           max_len=16, threads=1)
    seen = Recorder()
    result = run(TINY, cfg, tmp_path / "run", callbacks=[seen])
    print({k: result[k] for k in ("accuracy_before", "accuracy", "best_epoch", "wall_s")})
    assert 0.4 <= result["accuracy_before"] <= 0.6
    assert result["accuracy"] >= 0.7
    assert result["init"] == "scratch" and result["epochs"] == 8 and result["n_train"] == 1000
    assert [m["epoch"] for m, _ in seen.evals] == list(range(1, 9))
    assert max(m["accuracy"] for m, _ in seen.evals) == result["accuracy"]
    assert all(path.is_dir() for _, path in seen.evals[-2:])
    assert Path(result["best_checkpoint"]).is_dir()
    # finished: a rerun returns the stored result without training
    assert run(TINY, cfg, tmp_path / "run") == result


def small_task(flores: Path, tmp_path: Path) -> Path:
    return build_translation_task(flores, "en", "en", 48, 16, 1, tmp_path / "task")


def test_resume_after_a_crash_matches_an_uninterrupted_run(flores, tmp_path):
    cfg = DownstreamConfig(task=str(small_task(flores, tmp_path)), epochs=3, lr=1e-3,
                           batch_size=16, micro_batch_size=8, max_len=16, threads=1)
    whole = run(TINY, cfg, tmp_path / "whole")
    with pytest.raises(RuntimeError, match="simulated"):
        run(TINY, cfg, tmp_path / "crash", callbacks=[Recorder(fail_after=2)])
    assert not (tmp_path / "crash" / "result.json").exists()
    seen = Recorder()
    resumed = run(TINY, cfg, tmp_path / "crash", callbacks=[seen])
    assert [m["epoch"] for m, _ in seen.evals] == [3]  # epochs 1-2 were not redone
    for key in ("accuracy", "accuracy_before", "best_epoch", "steps", "train_loss"):
        assert resumed[key] == whole[key], key
    # resume_from a checkpoint directory elsewhere (what Ray Tune hands back)
    epoch_ckpt = sorted((tmp_path / "whole" / "checkpoints").iterdir())[0]
    again = run(TINY, cfg, tmp_path / "elsewhere", resume_from=epoch_ckpt)
    assert again["train_loss"] == whole["train_loss"]
    with pytest.raises(XferError, match="lr=0.001"):
        run(TINY, DownstreamConfig(**{**cfg.to_dict(), "lr": 1e-2}), tmp_path / "whole")
    # a result from before position_bias existed kept the tables: not returned as a zero run
    meta_path = tmp_path / "whole" / "best" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["downstream"]["position_bias"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(XferError, match="position_bias='keep', not 'zero'"):
        run(TINY, cfg, tmp_path / "whole")


def base_twin_task(tmp_path: Path) -> Path:
    """The default study's task in small: base sentences and their twin transliterations (1)
    or another sentence's (0), 256 + 128 pairs of at most 64 bytes. Counting bytes solves it
    (a twin sentence has about twice its base sentence's bytes), so a classifier must compare
    the premise with the hypothesis across the whole pair."""
    premises, hypotheses = synthetic_aligned_lines("base", "twin", 1500, 0)
    pairs = [(p, h) for p, h in zip(premises, hypotheses, strict=True)
             if len(p.encode()) + len(h.encode()) + 2 <= 64][:384]
    aligned = tmp_path / "aligned"
    aligned.mkdir()
    for lang, lines in (("base", [p for p, _ in pairs]), ("twin", [h for _, h in pairs])):
        (aligned / f"{lang}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return build_translation_task(aligned, "base", "twin", 256, 128, 0, tmp_path / "task")


def pretrained_like_checkpoint(path: Path) -> Path:
    """A ByteLM with a pretrained LM's position bias: in every layer distance 0 at -1, distances
    1-4 at +3, farther at -3.5 nats (the default study's base LM, layer 0: -1.0/-0.8, up to
    +3.3/+2.6, -1.5 to -3.8). What keeps such a model's classifier at chance (module docstring of
    xfer.downstream) is this bias, so the rest of the model may stay random."""
    torch.manual_seed(3)
    lm = ByteLM(TINY)
    with torch.no_grad():
        for block in lm.blocks:
            block.rel_bias.weight.fill_(-3.5)
            block.rel_bias.weight[1:5] = 3.0
            block.rel_bias.weight[0] = -1.0
    return save_checkpoint(path, lm, {"model": TINY.to_dict(), "lang": "local"})


def test_pretrained_like_init_learns_with_position_bias_zeroed(tmp_path):
    # ~8 s a run on one core; the same run keeping the local bias stays at chance
    source = pretrained_like_checkpoint(tmp_path / "pretrained")
    cfg = DownstreamConfig(task=str(base_twin_task(tmp_path)), language="base-twin", epochs=8,
                           lr=1e-3, batch_size=32, max_len=64, threads=1)
    learned = run(None, cfg, tmp_path / "zero", init_checkpoint=source)
    kept = run(None, DownstreamConfig(**{**cfg.to_dict(), "position_bias": "keep"}),
               tmp_path / "keep", init_checkpoint=source)
    print({k: (learned[k], kept[k]) for k in ("accuracy_before", "accuracy", "wall_s")})
    assert learned["init"] == "local" and learned["accuracy"] >= 0.7
    assert kept["accuracy"] <= 0.6


def test_init_from_a_language_model_checkpoint(flores, tmp_path):
    torch.manual_seed(3)
    lm = ByteLM(TINY)
    source = save_checkpoint(tmp_path / "pretrained" / "best", lm,
                             {"model": TINY.to_dict(), "lang": "de"})
    cfg = DownstreamConfig(task=str(small_task(flores, tmp_path)), epochs=1, lr=0.0,
                           batch_size=16, max_len=16, threads=1)
    result = run(None, cfg, tmp_path / "run", init_checkpoint=source)
    assert result["init"] == "de"
    stored = torch.load(tmp_path / "run" / "best" / "model.pt", weights_only=True)
    for name, value in lm.state_dict().items():  # all weights but the zeroed position bias
        expected = torch.zeros_like(value) if "rel_bias" in name else value
        assert torch.equal(stored[f"lm.{name}"], expected), name
    keep = DownstreamConfig(**{**cfg.to_dict(), "position_bias": "keep"})
    run(None, keep, tmp_path / "keep", init_checkpoint=source)
    stored = torch.load(tmp_path / "keep" / "best" / "model.pt", weights_only=True)
    assert all(torch.equal(stored[f"lm.{k}"], v) for k, v in lm.state_dict().items())
    other = ModelConfig(name="other", d_model=32, n_layers=1, n_heads=1, d_head=32, d_ff=64)
    with pytest.raises(XferError, match="model config"):
        run(other, cfg, tmp_path / "run2", init_checkpoint=source)


def write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)


PAIRS = pd.DataFrame({"premise": ["a b", "c d", "e f", "g"], "hypothesis": ["x", "y", "z", "w"],
                      "label": [0, 1, 1, 0]})


@pytest.mark.parametrize("ext", ["tsv", "jsonl", "parquet"])
def test_local_formats_and_column_mapping(tmp_path, ext):
    theirs = PAIRS.rename(columns={"label": "entailment_judgment", "premise": "text_a"})
    theirs["entailment_judgment"] = theirs["entailment_judgment"].map({0: "NONE", 1: "ENTAIL"})
    for split in ("train", "validation"):
        write(tmp_path / f"train_{ext}" / f"{split}.{ext}", theirs)
    cfg = DownstreamConfig(task=str(tmp_path / f"train_{ext}"),
                           columns={"label": "entailment_judgment", "premise": "text_a"})
    train, val, labels = load_task(cfg)
    assert labels == ["ENTAIL", "NONE"]
    assert train["label"].tolist() == [1, 0, 0, 1] and list(train.columns) == list(PAIRS.columns)
    assert val["premise"].tolist() == PAIRS["premise"].tolist()


@pytest.mark.parametrize("train, val, message", [
    (PAIRS.drop(columns="hypothesis"), PAIRS, "lacks column.*hypothesis"),
    (PAIRS.assign(label=[0, 1, 2, 0]), PAIRS, "two classes; training split has 3"),
    (PAIRS.assign(label=1), PAIRS, "two classes; training split has 1"),
    (PAIRS, PAIRS.iloc[:0], "has no pairs"),
    (PAIRS, PAIRS.assign(label=[0, 1, 5, 0]), "validation labels 5"),
])
def test_bad_tasks_are_one_line_errors(tmp_path, train, val, message):
    write(tmp_path / "task" / "train.tsv", train)
    write(tmp_path / "task" / "validation.tsv", val)
    with pytest.raises(XferError, match=message) as info:
        load_task(DownstreamConfig(task=str(tmp_path / "task")))
    assert "\n" not in str(info.value)


def test_bad_files_and_configs(tmp_path):
    with pytest.raises(XferError, match="does not exist"):
        load_task(DownstreamConfig(task=str(tmp_path / "nowhere")))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "train.parquet").write_bytes(b"not parquet at all")
    write(tmp_path / "t" / "validation.jsonl", PAIRS)
    with pytest.raises(XferError, match="cannot read task file .*train.parquet") as info:
        load_task(DownstreamConfig(task=str(tmp_path / "t")))
    assert "\n" not in str(info.value)
    write(tmp_path / "t" / "validation.tsv", PAIRS)
    (tmp_path / "t" / "train.parquet").unlink()
    write(tmp_path / "t" / "train.jsonl", PAIRS)
    with pytest.raises(XferError, match="more than one validation file"):
        load_task(DownstreamConfig(task=str(tmp_path / "t")))
    with pytest.raises(XferError, match="unknown downstream config keys: epoch"):
        DownstreamConfig.from_dict({"task": "x", "epoch": 3})
    with pytest.raises(XferError, match="unknown key.*answer"):
        DownstreamConfig(task="x", columns={"answer": "y"})
    with pytest.raises(XferError, match="task source"):
        DownstreamConfig(task="x", source="web")
    with pytest.raises(XferError, match="position_bias must be one of zero, keep"):
        DownstreamConfig(task="x", position_bias="random")
    with pytest.raises(XferError, match="not a multiple"):
        DownstreamConfig(task="x", batch_size=10, micro_batch_size=4)
    with pytest.raises(XferError, match="needs a model config"):
        run(None, DownstreamConfig(task="x"), tmp_path / "r")
    cfg = DownstreamConfig(task="nilc-nlp/assin2", source="hub", language="pt",
                           columns={"label": "entailment_judgment"})
    assert DownstreamConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_downstream_table():
    rows = pd.DataFrame({"init": ["en", "en", "ru", "scratch"], "seed": [0, 1, 0, 0],
                         "accuracy": [0.78, 0.80, 0.82, 0.60],
                         "accuracy_before": [0.5, 0.5, 0.49, 0.5], "language": "pt"})
    text = downstream_table(rows)
    lines = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert lines[1:] == ["| ru | 82.0 | +22.0 | 49.0 | 1 |",
                         "| en | 79.0 ± 1.4 | +19.0 | 50.0 | 2 |",
                         "| scratch | 60.0 | – | 50.0 | 1 |"]
    assert "language pt" in text
    assert "| en | 79.0" in downstream_table(rows[rows["init"] != "scratch"])
    with pytest.raises(XferError, match="lack column"):
        downstream_table(rows.drop(columns="accuracy"))
    with pytest.raises(XferError, match="no downstream results"):
        downstream_table(rows.iloc[:0])
