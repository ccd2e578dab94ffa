"""``python -m sweeps.grid``: run a whole study as a Ray Tune sweep.

prepare data (Ray tasks, once per language) -> pretrain / scratch / finetune trials in
dependency order -> results.parquet -> ``xfer.analysis.analyse`` report, all in one run folder
keyed by the config's hash. Running the same command again resumes the study.

    python -m sweeps.grid                         # the embedded default study, local Ray
    python -m sweeps.grid --config paper --dry-run
    python -m sweeps.grid --config my.yaml --address auto
    python -m sweeps.grid --config small --corpus bundled   # the text shipped in the package
    python -m sweeps.grid --corpus DIR --sources en,de --targets fi,et   # the small design on
                                                  # your own languages (DIR/<code>.txt[.gz])
"""

from __future__ import annotations

import argparse
import errno
import shlex
import sys
from typing import TYPE_CHECKING

from xfer.cli import ArgumentParser
from xfer.errors import XferError, exit_on_error

if TYPE_CHECKING:
    from sweeps.config import StudyConfig

PROG = "python -m sweeps.grid"
OWN_LANGUAGES_CONFIG = "small"  # the design --sources/--targets run when no --config is given
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options of the sweep."""
    parser.add_argument("--config", default=None,
                        help="bundled config name (default, small, paper) or a YAML file "
                             f"(default: default; {OWN_LANGUAGES_CONFIG} with --sources/--targets)")
    parser.add_argument("--corpus", default=None,
                        help="a folder of <lang>.txt(.gz) files, bundled (the text shipped in "
                             "the package), mc4 or synthetic, instead of the config's corpus")
    parser.add_argument("--sources", default=None,
                        help="comma-separated source languages, e.g. en,de: replace the "
                             "config's sources (and drop its extra pairs)")
    parser.add_argument("--targets", default=None,
                        help="comma-separated target languages, e.g. fi,et: replace the "
                             "config's targets (and drop its extra pairs)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the trials and their cost; start nothing")
    parser.add_argument("--json", action="store_true", help="with --dry-run: JSON output")
    parser.add_argument("--address", default=None,
                        help="an existing Ray cluster ('auto' or host:port); default: start a "
                             "local one")
    parser.add_argument("--output", default=None,
                        help="parent folder of run folders (default: the config's run.output)")
    parser.add_argument("--storage", default=None,
                        help="Ray Tune storage path (default <run folder>/tune; gs://... allowed)")
    parser.add_argument("--max-concurrent", type=int, default=None,
                        help="trials at once (default: as many as the cluster fits)")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--no-dashboard", dest="dashboard", action="store_false",
                        help="do not start Ray's dashboard (default: on 127.0.0.1:8265 with the "
                             "local instance)")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2),
                        help="Ray Tune's console output (0: xfer's progress lines only)")


def run(args: argparse.Namespace) -> int:
    """Dry-run or run the study; returns the exit status."""
    from sweeps.config import load_config

    if args.json and not args.dry_run:
        raise XferError("--json only goes with --dry-run")
    own = getattr(args, "sources", None) or getattr(args, "targets", None)
    study = load_config(args.config or (OWN_LANGUAGES_CONFIG if own else "default"))
    if getattr(args, "corpus", None):
        study = with_corpus(study, args.corpus)
    if own:
        study = with_languages(study, args.sources, args.targets)
    if args.dry_run:
        from sweeps.dryrun import dry_run

        print(dry_run(study, as_json=args.json))
        return 0
    from sweeps.runner import RunOptions, run_study

    check_corpus_folder(study)
    options = RunOptions(address=args.address, output=args.output, storage=args.storage,
                         max_concurrent=args.max_concurrent, num_cpus=args.num_cpus,
                         dashboard=args.dashboard, verbose=args.verbose,
                         command=getattr(args, "command_line", None))
    try:
        return run_study(study, options)
    except Exception as exc:  # noqa: BLE001 - only storage errors are translated
        full = storage_error(exc)
        if full is None:
            raise
        raise XferError(f"{full.strerror}: {full.filename or 'the run folder'}; free space (or "
                        f"fix the storage) and run the same command again to continue") from None


def with_corpus(study: StudyConfig, corpus: str) -> StudyConfig:
    """``study`` reading its text from ``corpus`` (``--corpus``); a folder is made absolute, so
    the run folder's hash names the folder, not the working directory. ``bundled`` stays a name
    (the same hash on every machine)."""
    import dataclasses
    from pathlib import Path

    from sweeps.config import check_corpus
    from xfer.data.corpora import BUNDLED, bundled_corpus

    if corpus == BUNDLED:
        bundled_corpus()  # present in this installation
        return dataclasses.replace(study, corpus=BUNDLED)
    check_corpus(corpus)
    path = Path(corpus).expanduser()
    return dataclasses.replace(study, corpus=str(path.resolve()) if path.is_dir() else corpus)


def with_languages(study: StudyConfig, sources: str | None,
                   targets: str | None) -> StudyConfig:
    """``study`` on other languages (``--sources``/``--targets``, comma-separated codes): the
    given lists replace the config's, and its extra pairs (which name its own languages) go."""
    import dataclasses

    from sweeps.config import Languages

    langs = study.languages
    new = Languages(language_list(sources, "--sources") if sources else langs.sources,
                    language_list(targets, "--targets") if targets else langs.targets, ())
    if not any(s != t for s in new.sources for t in new.targets):
        raise XferError(f"--sources {','.join(new.sources)} and --targets "
                        f"{','.join(new.targets)} make no pair (a source is never finetuned on "
                        "itself)")
    return dataclasses.replace(study, languages=new)


def language_list(text: str, option: str) -> tuple[str, ...]:
    """Comma-separated language codes (``en,de``), each a valid name, none twice."""
    from xfer.schema import check_name

    codes = tuple(code.strip() for code in text.split(","))
    for code in codes:
        if not code:
            raise XferError(f"{option}: empty language code in {text!r} (e.g. en,de)")
        check_name(code, option)
    if len(set(codes)) != len(codes):
        raise XferError(f"{option}: repeated language in {text!r}")
    return codes


def check_corpus_folder(study: StudyConfig) -> None:
    """A study reading a folder: every language's file is there, UTF-8, and holds dev + test +
    the language's largest budget; else one line naming the language, before any trial."""
    from pathlib import Path

    from sweeps.config import NAMED_CORPORA
    from sweeps.trials import build_trials, language_budgets
    from xfer.data.corpora import BUNDLED, check_folder

    if study.corpus in NAMED_CORPORA and study.corpus != BUNDLED:
        return
    extra = study.data.dev_bytes + study.data.test_bytes
    budgets = language_budgets(study, build_trials(study))
    check_folder(Path(study.corpus).expanduser(),
                 {lang: extra + max(b) for lang, b in sorted(budgets.items())})


def storage_error(exc: BaseException) -> OSError | None:
    """The disk-full / quota / read-only error somewhere in ``exc``'s chain (Ray and Tune wrap
    errors: their ``cause``, ``__cause__`` and ``__context__`` are followed), else None."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            return e
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sweeps.grid``."""
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    args.command_line = shlex.join([*PROG.split(), *(sys.argv[1:] if argv is None else argv)])
    return exit_on_error(PROG, lambda: run(args))


if __name__ == "__main__":
    raise SystemExit(main())
