"""The input boundary: every file, name and number that xfer reads from disk (run folders,
exports, results tables, manifests, ledgers, study YAML, fastText models) crosses it.

:mod:`xfer.boundary.files` opens regular files only and resolves names inside their folder;
:mod:`xfer.boundary.parse` parses JSON and YAML with depth, size and number limits;
:mod:`xfer.boundary.outputs` guards every ``--out``. See docs/threat-model.md.
"""

from xfer.boundary.files import (
    CAPS,
    MAX_NAME,
    NAME_PATTERN,
    check_name,
    inside,
    is_regular,
    list_names,
    open_regular,
    read_bytes,
    regular_file,
    resolve,
    stored_bytes,
    within,
)
from xfer.boundary.parse import (
    MAX_DEPTH,
    check_depth,
    finite,
    parse_json,
    parse_yaml,
    read_json,
    read_json_object,
    read_yaml,
)

__all__ = ["CAPS", "MAX_DEPTH", "MAX_NAME", "NAME_PATTERN", "check_depth", "check_name",
           "finite", "inside", "is_regular", "list_names", "open_regular", "parse_json",
           "parse_yaml", "read_bytes", "read_json", "read_json_object", "read_yaml",
           "regular_file", "resolve", "stored_bytes", "within"]
