"""The input boundary as a class of inputs (issue 28): generated hostile numbers, JSON, YAML,
files and names, each either accepted as a valid value or refused with one XferError line, in
bounded time, never through a symbolic link and never by blocking on a special file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.crafted_util import SPECIALS, TALLY, make_special
from xfer.boundary import (
    MAX_DEPTH,
    open_regular,
    parse_json,
    parse_yaml,
    read_json,
    resolve,
    stored_bytes,
)
from xfer.boundary.outputs import check_out, clean_stale, temp_prefix
from xfer.errors import XferError
from xfer.units import MAX_BYTE_COUNT, parse_bytes

FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def one_line(exc: XferError, kind: str | None = None) -> str:
    text = str(exc)
    assert "\n" not in text and 0 < len(text) < 1000, text
    if kind:
        TALLY[kind]["one XferError line"] += 1
    return text


def valid(kind: str) -> None:
    TALLY[kind]["valid value"] += 1


# ---- numbers: digits and exponent bounded before conversion ----
number_text = st.one_of(
    st.from_regex(r"\A\s?\d{1,60}(\.\d{0,30})?(e\+?\d{1,9})?\s?[KMGBTkmgbt]?\s?\Z"),
    st.text(max_size=40),
    st.sampled_from(["1e999999", "1e99999999", "9" * 5000, "0e999999", "6M", "1.5K", "-5",
                     "nan", "inf", "1e18", "9.3e18", "9223372036854775807"]))


@FAST
@given(value=st.one_of(number_text, st.integers(min_value=-2**70, max_value=2**70),
                       st.floats(allow_nan=True, allow_infinity=True), st.booleans()))
def test_parse_bytes_is_a_valid_count_or_one_line_quickly(value: object) -> None:
    start = time.perf_counter()
    try:
        count = parse_bytes(value)  # type: ignore[arg-type]
    except XferError as exc:
        one_line(exc, "number (byte count)")
    else:
        assert isinstance(count, int) and 0 < count <= MAX_BYTE_COUNT
        valid("number (byte count)")
    assert time.perf_counter() - start < 0.5


# ---- JSON: depth, numbers, encodings ----
leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                   st.integers(min_value=10**40, max_value=10**60))
json_values = st.recursive(leaves, lambda kids: st.lists(kids, max_size=3) |
                           st.dictionaries(st.text(max_size=4), kids, max_size=3), max_leaves=20)


@FAST
@given(value=json_values, depth=st.integers(0, 3 * MAX_DEPTH), junk=st.binary(max_size=4))
def test_json_is_parsed_within_limits_or_refused(value: object, depth: int, junk: bytes) -> None:
    text = "[" * depth + json.dumps(value, allow_nan=True) + "]" * depth
    raw = text.encode() + junk
    try:
        data = parse_json(raw, "x.json")
    except XferError as exc:
        one_line(exc, "JSON text (depth, numbers, encoding)")
        return
    valid("JSON text (depth, numbers, encoding)")
    assert depth < MAX_DEPTH
    finite = json.dumps(data, allow_nan=False)  # no NaN/inf got through
    assert len(finite) < 10**6


# ---- YAML: aliases, duplicate keys, depth, numbers ----
def alias_bomb(levels: int, width: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


yaml_texts = st.one_of(
    st.builds(alias_bomb, st.integers(1, 12), st.integers(1, 12)),
    st.builds(lambda k, a, b: f"{k}: {a}\n{k}: {b}\n", st.sampled_from(["a", "seeds", "name"]),
              st.integers(), st.integers()),
    st.builds(lambda d: "x: " + "[" * d + "1" + "]" * d + "\n", st.integers(0, 400)),
    st.builds(lambda d: "".join("  " * i + f"k{i}:\n" for i in range(d)) + "  " * d + "v\n",
              st.integers(1, 200)),
    st.builds(lambda n: f"x: {n}\n", st.sampled_from(["9" * 5000, ".inf", "-.inf", ".nan",
                                                      "1e999", "1.0e999", "0x" + "f" * 60])),
    st.text(max_size=60),
)


@FAST
@given(text=yaml_texts)
def test_yaml_is_loaded_within_limits_or_refused(text: str) -> None:
    start = time.perf_counter()
    try:
        data = parse_yaml(text, "study.yaml")
    except XferError as exc:
        one_line(exc, "YAML text (aliases, duplicates, depth, numbers)")
    else:
        valid("YAML text (aliases, duplicates, depth, numbers)")
        assert len(json.dumps(data, default=str)) < 10**7
        keys = [line.split(":")[0] for line in text.splitlines()
                if line[:1].isalpha() and ": " in line and line.split(":")[0].isidentifier()]
        assert len(keys) == len(set(keys)), "a duplicate key was accepted (the last would win)"
    assert time.perf_counter() - start < 10.0


def test_yaml_duplicate_keys_and_alias_bomb_are_refused() -> None:
    with pytest.raises(XferError, match="duplicate key 'seeds'"):
        parse_yaml("seeds: [0]\nseeds: [1]\n", "s.yaml")
    start = time.perf_counter()
    with pytest.raises(XferError, match="alias"):
        parse_yaml(alias_bomb(9, 9), "s.yaml")  # 9**9 values expanded, 3.7 KB of text
    assert time.perf_counter() - start < 5.0
    assert parse_yaml("a: &v 3\nb: *v\n", "s.yaml") == {"a": 3, "b": 3}
    assert yaml.safe_load("a: 1\na: 2\n") == {"a": 2}  # what PyYAML alone would have done


# ---- files: regular files only, never blocking ----
@pytest.mark.parametrize("kind", [*SPECIALS, "missing", "regular"])
def test_special_files_are_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "file.json"
    if kind != "missing":
        path.write_bytes(b'{"a": 1}')
    if kind not in ("missing", "regular"):
        make_special(path, kind, tmp_path)
    start = time.perf_counter()
    if kind in ("regular", "link out"):  # read_json alone knows no folder: resolve() does
        assert read_json(path) == {"a": 1}
    else:
        with pytest.raises(XferError) as info:
            read_json(path)
        one_line(info.value)
    assert time.perf_counter() - start < 5.0
    if kind == "sparse 1 TiB":
        assert stored_bytes(path.stat()) < 1 << 20
        open_regular(path).close()  # no cap given: a sparse regular file opens


# ---- names: one resolver ----
@FAST
@given(name=st.one_of(st.text(max_size=12), st.sampled_from(
    ["..", ".", "/etc", "../x", "a/../../b", "ok", "ok.json", ".hidden", "a\0b", "x" * 300,
     "link"])))
def test_resolve_stays_inside_its_folder(tmp_path_factory: pytest.TempPathFactory,
                                         name: str) -> None:
    root = tmp_path_factory.getbasetemp() / "resolve-root"
    (root / "in").mkdir(parents=True, exist_ok=True)
    if not (root / "in" / "link").is_symlink():
        (root / "in" / "link").symlink_to(root)  # leads out of root/in
    try:
        path = resolve(root / "in", name, what="name")
    except XferError as exc:
        one_line(exc, "name that becomes a path")
        return
    valid("name that becomes a path")
    assert path.resolve().is_relative_to((root / "in").resolve())
    assert path.parent == root / "in"


# ---- outputs: symlinks refused, stale temp siblings cleaned ----
def test_out_refuses_links_and_cleans_what_a_dead_run_left(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(XferError, match="symbolic link"):
        check_out(tmp_path / "link", "--out")
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (run / "sub" / "checkpoints").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(XferError, match="checkpoints is a symbolic link"):
        check_out(run, "--out", tree=True)
    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale = tmp_path / f".out.xfer-tmp-{dead}-abc"
    stale.mkdir()
    (stale / "partial").write_text("x")
    mine = tmp_path / f"{temp_prefix('out')}live"
    mine.mkdir()
    check_out(tmp_path / "out", "--out")
    assert not stale.exists() and mine.exists()
    assert clean_stale(tmp_path) == []
