"""The ``xfer`` command: one console script, one subcommand per module.

Each subcommand lives in the module that owns it; that module exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
subcommand runs, so ``xfer lid`` never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from xfer.errors import exit_on_error

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("xfer.data.cli", "prepare byte-budgeted train/dev/test datasets from a corpus"),
    "train": ("xfer.training.cli", "one training run (pretrain, finetune or scratch) without Ray"),
    "analyse": ("xfer.analysis.analyse",
                "D_E, D_T, correlations, tables and figures from a results table"),
    "lid": ("xfer.analysis.contamination", "language-ID label shares of a text file, line by line"),
    "distance": ("xfer.analysis.similarity", "the six lang2vec distances between two languages"),
    "export": ("xfer.model.export",
               "a study trial's model as safetensors + config.json + model card"),
    "generate": ("xfer.model.generate", "sample bytes from an exported or trial model"),
    "premium": ("xfer.analysis.premium",
                "byte premium: bytes of a language per byte of a reference on parallel text"),
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) and exit with status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser(command: str) -> tuple[argparse.ArgumentParser, object]:
    """The parser of one subcommand and the module that runs it."""
    module_name, help_text = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = ArgumentParser(prog=f"xfer {command}", description=help_text)
    module.add_arguments(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xfer`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = ArgumentParser(prog="xfer", description=__doc__.splitlines()[0])
    top.add_argument("command", choices=sorted(COMMANDS), help="; ".join(
        f"{name}: {help_text}" for name, (_, help_text) in COMMANDS.items()))
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0 if argv else 2
    top.parse_args(argv[:1])
    parser, module = build_parser(argv[0])
    args = parser.parse_args(argv[1:])
    return exit_on_error(f"xfer {argv[0]}", lambda: module.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
