"""``xfer prepare``: byte-budgeted train/dev/test datasets from a corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from xfer.boundary.outputs import check_out
from xfer.data.corpora import DEFAULT_SHUFFLE_BUFFER, MC4_FILES_ENV
from xfer.data.prepare import prepare
from xfer.data.store import read_manifest
from xfer.errors import XferError
from xfer.schema import byte_count, check_name
from xfer.units import parse_budgets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``xfer prepare``."""
    parser.add_argument("--corpus", required=True,
                        help="mc4, synthetic, or a folder of <lang>.txt[.gz] / .jsonl / .parquet")
    parser.add_argument("--lang", action="append", required=True,
                        help="language code (repeat for several)")
    parser.add_argument("--budgets", required=True,
                        help="increasing training budgets in bytes, e.g. 6M,19M,60M")
    parser.add_argument("--dev-bytes", default="1M", help="dev split size, bytes (default 1M)")
    parser.add_argument("--test-bytes", default="1M", help="test split size, bytes (default 1M)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--out", type=Path, required=True, help="dataset root folder")
    parser.add_argument("--mc4-files", default=None,
                        help=f"mc4 only: glob of local json/parquet files with {{lang}} "
                             f"(default: ${MC4_FILES_ENV}, else the Hugging Face Hub)")
    parser.add_argument("--shuffle-buffer", type=int, default=DEFAULT_SHUFFLE_BUFFER,
                        help="mc4 only: documents in the shuffle buffer")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Prepare every language; print one summary line per language."""
    for lang in args.lang:
        check_name(lang, "--lang")
    try:
        budgets = parse_budgets(args.budgets)
    except XferError as exc:
        raise XferError(f"--budgets: {exc}") from None
    for budget in budgets:
        byte_count(budget, "--budgets")
    if not 0 <= args.seed < 2**63:
        raise XferError(f"--seed must be from 0 to 2**63-1, got {args.seed}")
    if args.shuffle_buffer < 1:
        raise XferError(f"--shuffle-buffer must be at least 1, got {args.shuffle_buffer}")
    check_out(args.out, "--out")
    folders = prepare(args.corpus, args.lang, budgets, byte_count(args.dev_bytes, "--dev-bytes"),
                      byte_count(args.test_bytes, "--test-bytes"), args.seed,
                      args.out, progress=not args.no_progress, mc4_files=args.mc4_files,
                      shuffle_buffer=args.shuffle_buffer)
    for folder in folders:
        m = read_manifest(folder.parent, folder.name)
        train = m["splits"]["train"]
        notes = ""
        if m["invalid_utf8_lines"] or m["empty_documents_skipped"]:
            notes = (f" ({m['invalid_utf8_lines']} lines with invalid UTF-8 repaired, "
                     f"{m['empty_documents_skipped']} empty documents skipped)")
        print(f"{folder}: train {train['bytes']:,} bytes / {train['documents']:,} documents, "
              f"dev {m['splits']['dev']['bytes']:,}, test {m['splits']['test']['bytes']:,}{notes}")
    return 0
