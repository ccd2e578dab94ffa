"""Parsing at the input boundary: JSON and YAML with depth, size and number limits, and numbers
checked before any conversion.

* JSON: UTF-8 only; ``NaN``/``Infinity`` refused; an integer or decimal literal longer than
  :data:`MAX_NUMBER_CHARS` characters refused before it is converted; nesting at most
  :data:`MAX_DEPTH`.
* YAML: a safe loader that refuses duplicate keys and any key that is not a scalar, nesting beyond
  :data:`MAX_DEPTH`, more than :data:`MAX_NODES` nodes once every alias is expanded (an alias
  bomb is refused after a walk linear in the file, never expanded), and numbers longer than
  :data:`MAX_NUMBER_CHARS` characters or not finite.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from xfer.boundary.files import read_bytes
from xfer.errors import XferError

MAX_DEPTH = 64  # nesting of lists and mappings in any JSON or YAML file xfer reads
MAX_NUMBER_CHARS = 40  # characters of one number literal (2**63 has 19 digits)
MAX_NODES = 1_000_000  # YAML nodes, aliases expanded


def _line(exc: BaseException) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f"at line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"{where}{' '.join(exc.problem.split())}"[:300]
    text = str(exc).strip().splitlines()
    return " ".join(" ".join(text).split())[:300] if text else exc.__class__.__name__


def _json_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"an integer of {len(text)} digits (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _json_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _json_constant(text: str) -> float:
    raise ValueError(f"{text} is not a finite number")


def check_depth(data: object, what: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse ``data`` (parsed JSON or YAML) nested deeper than ``max_depth`` lists and
    mappings; iterative, so any depth is checked without recursion."""
    stack: list[tuple[object, int]] = [(data, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list | tuple) or id(item) in seen:
            continue
        if depth >= max_depth:
            raise XferError(f"{what}: nested more than {max_depth} levels deep")
        seen.add(id(item))
        stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))


def _json_any_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    return float(text)


def parse_json(raw: bytes, what: str, *, finite: bool = True) -> Any:
    """The JSON value in ``raw`` (UTF-8), within the limits above; XferError naming ``what``.
    ``finite=False`` accepts ``NaN`` and ``Infinity`` (files xfer writes with them, e.g. a
    checkpoint's best dev loss before the first evaluation; their readers check each field)."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_int=_json_int,
                          parse_float=_json_float if finite else _json_any_float,
                          parse_constant=_json_constant if finite else float)
    except RecursionError:
        raise XferError(f"{what}: nested more than {MAX_DEPTH} levels deep") from None
    except UnicodeError as exc:
        raise XferError(f"{what}: not UTF-8 text ({_line(exc)})") from None
    except ValueError as exc:
        raise XferError(f"{what}: not valid JSON: {_line(exc)}") from None
    check_depth(data, what)
    return data


def read_json(path: Path, what: str | None = None, kind: str = "json", *,
              finite: bool = True) -> Any:
    """The JSON value in the regular file ``path`` (:func:`xfer.boundary.files.read_bytes`,
    :func:`parse_json`)."""
    where = what or str(path)
    return parse_json(read_bytes(path, where, kind), where, finite=finite)


def read_json_object(path: Path, what: str, required_key: str | None = None,
                     kind: str = "json", *, finite: bool = True) -> dict:
    """The JSON object in ``path``, which must hold ``required_key`` when one is given."""
    data = read_json(path, what, kind, finite=finite)
    if not isinstance(data, dict):
        raise XferError(f"{what}: not valid: not a JSON object")
    if required_key is not None and required_key not in data:
        raise XferError(f"{what}: not valid: no {required_key!r} entry")
    return data


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with duplicate keys, non-scalar keys, over-long numbers and
    non-finite floats refused (:func:`parse_yaml` adds the depth and alias limits)."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
        seen: set[object] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key that is a list or mapping", key_node.start_mark)
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_NUMBER_CHARS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {len(node.value)} characters (at most "
                f"{MAX_NUMBER_CHARS})", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node) if len(node.value) <= MAX_NUMBER_CHARS \
            else math.inf
        if not math.isfinite(value):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value[:40]!r} is not a finite number", node.start_mark)
        return value


StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)
StrictLoader.add_constructor("tag:yaml.org,2002:float", StrictLoader.construct_yaml_float)
StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_yaml_map)


def _expanded_size(root: yaml.Node, what: str) -> None:
    """Refuse a node graph deeper than :data:`MAX_DEPTH` or of more than :data:`MAX_NODES`
    nodes with every alias expanded; each node is visited once (sizes memoised)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if not done and id(node) in size:
            continue
        children = [] if isinstance(node, yaml.ScalarNode) else \
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) \
            else list(node.value)
        if not done:
            if id(node) in open_:
                raise XferError(f"{what}: a recursive alias")
            open_.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in size)
            continue
        open_.discard(id(node))
        size[id(node)] = 1 + sum(size[id(c)] for c in children)
        depth[id(node)] = 1 + max((depth[id(c)] for c in children), default=0)
        if size[id(node)] > MAX_NODES:
            raise XferError(f"{what}: more than {MAX_NODES:,} values once its aliases are "
                            "expanded (an alias bomb?)")
        if depth[id(node)] > MAX_DEPTH:
            raise XferError(f"{what}: nested more than {MAX_DEPTH} levels deep")


def parse_yaml(text: str, what: str) -> Any:
    """The YAML document in ``text`` (see :class:`StrictLoader`); XferError naming ``what``."""
    try:
        level = 0
        for event in yaml.parse(text, Loader=StrictLoader):  # events: no recursion yet
            if isinstance(event, yaml.CollectionStartEvent):
                level += 1
                if level > MAX_DEPTH:
                    raise XferError(f"{what}: nested more than {MAX_DEPTH} levels deep")
            elif isinstance(event, yaml.CollectionEndEvent):
                level -= 1
        loader = StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _expanded_size(node, what)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        line = _line(exc)
        sep = " " if line.startswith("at line") else ": "
        raise XferError(f"{what}: malformed YAML{sep}{line}") from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise XferError(f"{what}: not valid YAML: {_line(exc)}") from None


def read_yaml(path: Path, what: str | None = None) -> Any:
    """The YAML document in the regular file ``path`` (UTF-8, at most ``CAPS['yaml']``)."""
    where = what or str(path)
    raw = read_bytes(path, where, "yaml")
    try:
        text = raw.decode("utf-8")
    except UnicodeError as exc:
        raise XferError(f"{where}: not UTF-8 text ({_line(exc)})") from None
    return parse_yaml(text, where)


def finite(value: object, what: str, low: float = -math.inf, high: float = math.inf, *,
           low_open: bool = False) -> float:
    """``value`` as a float if it is a number (not a bool), finite and in [low, high]
    (``(low, high]`` when ``low_open``); else XferError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise XferError(f"{what}: expected a number, got {str(value)[:40]!r}")
    if isinstance(value, int) and abs(value) > 10**MAX_NUMBER_CHARS:
        raise XferError(f"{what}: {value:.3e} is out of range")
    number = float(value)
    below = number <= low if low_open else number < low
    if not math.isfinite(number) or below or number > high:
        side = "(" if low_open else "["
        raise XferError(f"{what}: {value!r} is not a finite number in {side}{low:g}, {high:g}]")
    return number
