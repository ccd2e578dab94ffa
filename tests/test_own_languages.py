"""Your own languages without YAML (issue 27): ``python -m sweeps.grid --corpus DIR --sources
en,de --targets fi,et`` plans the small design on a folder's languages; what the report will leave
out (no lang2vec entry, no byte premium) is said up front, one line per reason; the bundled corpus
is a corpus name."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sweeps.config import load_config
from sweeps.grid import check_corpus_folder, main, with_corpus, with_languages
from xfer.analysis.analyse import run_analysis
from xfer.analysis.coverage import DISTANCE_FIELDS, left_out
from xfer.data.corpora import BUNDLED, bundled_corpus, bundled_parallel, open_corpus
from xfer.errors import XferError

REPO = Path(__file__).resolve().parents[1]


def grid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweeps.grid", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def grid_here(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """``python -m sweeps.grid ARGS`` in this process: exit status, stdout, stderr."""
    try:
        status = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        status = int(exc.code or 0)
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """en, de, fi copied from the bundled text (about 500 kB each) and 20 lines of 'et'."""
    root = tmp_path_factory.mktemp("own")
    for code in ("en", "de", "fi"):
        shutil.copyfile(bundled_corpus() / f"{code}.txt.gz", root / f"{code}.txt.gz")
    (root / "et.txt").write_text("Tere hommikust, kuidas läheb?\n" * 20, encoding="utf-8")
    return root


def test_bundled_corpus_holds_eleven_aligned_languages() -> None:
    codes = {"ar", "de", "en", "es", "fi", "id", "ja", "ko", "pt", "ru", "zh"}
    assert {p.name.removesuffix(".txt.gz") for p in bundled_corpus().glob("*.txt.gz")} == codes
    lines = {p.stem: len(p.read_bytes().splitlines()) for p in bundled_parallel().glob("*.txt")}
    assert set(lines) == codes and set(lines.values()) == {2009}
    for code in codes:  # enough for the small study's sources: dev 8K + test 16K + 200K
        with gzip.open(bundled_corpus() / f"{code}.txt.gz", "rb") as f:
            assert len(f.read()) > 224_000 * 2
    assert (bundled_corpus().parent / "README.md").is_file()
    assert open_corpus(BUNDLED, "ko").path == (bundled_corpus() / "ko.txt.gz").resolve()


def test_small_on_the_bundled_text_passes_the_corpus_check() -> None:
    study = with_corpus(load_config("small"), BUNDLED)
    assert study.corpus == BUNDLED  # a name: the same config hash on every machine
    check_corpus_folder(study)  # every language there with dev + test + its largest budget


def test_dry_run_plans_the_small_design_on_own_languages(folder: Path, capsys) -> None:
    out = grid("--corpus", str(folder), "--sources", "en,de", "--targets", "fi,et,xx",
               "--dry-run")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("study small ")
    assert f"corpus {folder}" in out.stdout
    assert "grid: 2 sources x 3 targets -> 6 pairs" in out.stdout
    assert "pt->es" not in out.stdout  # the config's extra pair names its own languages
    notes = [x for x in out.stdout.splitlines() if x.startswith("report leaves out: ")]
    assert len(notes) == 2
    assert notes[0].startswith("report leaves out: language(s) xx: no lang2vec/URIEL entry")
    assert all(f in notes[0] for f in DISTANCE_FIELDS)
    assert notes[1].startswith("report leaves out: target(s) et, xx: no byte premium")
    assert "d_t_en, d_t_en_mib" in notes[1]
    status, out, _ = grid_here(capsys, "--corpus", str(folder), "--sources", "en,de",
                               "--targets", "fi,et,xx", "--dry-run", "--json")
    assert status == 0
    js = json.loads(out)
    assert js["grid"]["sources"] == ["en", "de"] and js["grid"]["targets"] == ["fi", "et", "xx"]
    assert js["extra_pairs"]["pairs"] == [] and len(js["left_out"]) == 2


def test_languages_the_report_covers_leave_nothing_out() -> None:
    assert left_out(["en", "de", "fi", "ja"], ["fi", "ja"]) == []
    (note,) = left_out(["en", "et"], ["et"])
    assert note.kind == "note" and note.line().startswith("target(s) et: no byte premium")


def test_a_folder_lacking_text_fails_before_any_trial(folder: Path) -> None:
    study = with_languages(with_corpus(load_config("small"), str(folder)), "en,de", "fi,et")
    with pytest.raises(XferError, match=r"language 'et' lacks text: et.txt holds 620 bytes"):
        check_corpus_folder(study)
    study = with_languages(study, None, "fi")
    check_corpus_folder(study)
    absent = with_languages(study, None, "fi,sw")
    with pytest.raises(XferError, match=r"language 'sw' lacks a file"):
        check_corpus_folder(absent)


@pytest.mark.parametrize("args, message", [
    (("--sources", "en,,de"), "--sources: empty language code"),
    (("--targets", "fi,fi"), "--targets: repeated language"),
    (("--sources", "en", "--targets", "en"), "make no pair"),
    (("--sources", "../en"), "is not a valid name"),
    (("--corpus", "nowhere/at/all", "--sources", "en"), "does not exist"),
])
def test_bad_language_lists_are_one_line_errors(args: tuple[str, ...], message: str,
                                                capsys) -> None:
    status, out, err = grid_here(capsys, *args, "--dry-run")
    assert status == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("python -m sweeps.grid: error:") and message in line


def test_report_says_what_it_left_out_and_why(tmp_path: Path) -> None:
    rows = [("scratch", t, b, p) for t in ("fi", "et", "xx")
            for b, p in ((1000, 10.0), (4000, 5.0), (9000, 4.0))]
    rows += [("en", t, b, p) for t in ("fi", "et", "xx") for b, p in ((1000, 6.0), (4000, 4.5))]
    table = pd.DataFrame(rows, columns=["init", "target", "budget", "perplexity"]).assign(seed=0)
    outcome = run_analysis(table, tmp_path)
    assert not [p for p in outcome.problems if p.kind == "error"]
    notes = [line for line in outcome.report.read_text(encoding="utf-8").splitlines()
             if line.startswith("- **note** — ")]
    assert len(notes) == 2
    assert notes[0].startswith("- **note** — language(s) xx: no lang2vec/URIEL entry")
    assert notes[1].startswith("- **note** — target(s) et, xx: no byte premium")
    cells = pd.read_csv(tmp_path / "correlation_cells.csv").set_index("target")
    assert math.isnan(cells.loc["xx", "distance_genetic"])
    assert cells.loc["et", "distance_genetic"] > 0
    assert math.isnan(cells.loc["et", "d_t_en"]) and cells.loc["fi", "d_t_en"] > 0
