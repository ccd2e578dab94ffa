"""Byte premiums: bytes of a language per byte of a reference over aligned lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xfer.analysis import premium
from xfer.cli import main
from xfer.data.corpora import bundled_parallel

REPO = Path(__file__).resolve().parents[1]

EN = ["Hello world.", "Good morning!", "", "Thanks."]
RU = ["Привет, мир.", "Доброе утро!", "Пусто", "Спасибо."]


@pytest.fixture
def aligned(tmp_path):
    folder = tmp_path / "parallel"
    folder.mkdir()
    (folder / "en.txt").write_text("\n".join(EN) + "\n", encoding="utf-8")
    (folder / "ru.txt").write_text("\n".join(RU) + "\n", encoding="utf-8")
    return folder


def test_premium_from_an_aligned_fixture(aligned, capsys):
    keep = [i for i, line in enumerate(EN) if line]  # line 3 is empty in English: left out
    expected = sum(len(RU[i].encode()) for i in keep) / sum(len(EN[i].encode()) for i in keep)
    (p,) = premium.from_folder(["ru"], "en", aligned)
    assert p.premium == pytest.approx(expected) and p.lines == 3
    assert main(["premium", "ru", "--parallel", str(aligned), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"language": "ru", "reference": "en", "premium": pytest.approx(expected),
                   "lines": 3}
    assert main(["premium", "en", "--reference", "ru", "--parallel", str(aligned)]) == 0
    assert f"{1 / expected:.3f}" in capsys.readouterr().out


def test_write_then_read_the_package_data_format(aligned, tmp_path, capsys):
    target = tmp_path / "premiums.json"
    assert main(["premium", "all", "--parallel", str(aligned), "--write", str(target)]) == 0
    data = json.loads(target.read_text())
    assert data["lines"] == 3 and set(data["bytes"]) == {"en", "ru"}
    assert premium.byte_premium("ru", "en", data["bytes"], data["lines"]).premium == \
        pytest.approx(premium.from_folder(["ru"], "en", aligned)[0].premium)


def test_bad_input_is_one_line(aligned, tmp_path, capsys):
    (aligned / "de.txt").write_text("eins\n", encoding="utf-8")  # 1 line against 4
    for argv in (["premium", "ru", "--parallel", str(tmp_path / "missing")],
                 ["premium", "xx", "--parallel", str(aligned)],
                 ["premium", "de", "--parallel", str(aligned)],
                 ["premium", "syn-a"],  # no shipped premium for a generated language
                 ["premium", "ru", "--write", str(tmp_path / "p.json")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("xfer premium: error:")


def test_shipped_premiums_match_the_bundled_flores_text():
    folder = bundled_parallel()
    if folder.is_relative_to(REPO):  # the regeneration command names the bundled folder
        assert f"--parallel {folder.relative_to(REPO).as_posix()} " in premium.REGENERATE
    codes = sorted(p.stem for p in folder.glob("*.txt"))
    assert {"ar", "de", "en", "es", "fi", "id", "ja", "ko", "pt", "ru", "zh"} <= set(codes)
    for p in premium.from_folder(codes, "en", folder):
        assert premium.premium_of(p.language) == pytest.approx(p.premium)
    assert premium.premium_of("en") == 1.0 and premium.premium_of("ru") > 1.9
    assert premium.premium_of("base") != premium.premium_of("base")  # NaN: generated language


def test_parallel_never_reads_outside_its_folder(aligned, tmp_path, capsys):
    # Aligned with en.txt, so a premium would come out if the name reached outside DIR.
    (tmp_path / "x.txt").write_text("\n".join(RU) + "\n", encoding="utf-8")
    (aligned / "fr.txt").symlink_to(tmp_path / "x.txt")  # a link inside DIR leading out
    for language, named in (("../x", "'../x' is not a valid name"), ("fr", "leads outside")):
        assert main(["premium", language, "--parallel", str(aligned)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("xfer premium: error:") and named in err[0]
