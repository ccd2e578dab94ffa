"""``xfer train``: one training run (pretrain, finetune or scratch) without Ray."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from xfer.data.units import parse_bytes
from xfer.errors import XferError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``xfer train``: data, model, kind and every TrainConfig field."""
    from xfer.model import MODEL_CONFIGS
    from xfer.training.config import TrainConfig

    parser.add_argument("--data", type=Path, required=True, help="prepared dataset root")
    parser.add_argument("--lang", required=True, help="language code of the training data")
    parser.add_argument("--budget", required=True, help="training bytes, e.g. 6M")
    parser.add_argument("--out", type=Path, required=True, help="run folder (resumes if present)")
    parser.add_argument("--model", default="tiny", choices=sorted(MODEL_CONFIGS))
    parser.add_argument("--init", type=Path, help="checkpoint directory to finetune from")
    parser.add_argument("--resume-from", type=Path, help="checkpoint directory to resume")
    parser.add_argument("--extra-eval", action="append", default=[], metavar="NAME=PATH",
                        help="extra held-out text (one document per line), repeatable")
    parser.add_argument("--progress", type=int, default=0, metavar="STEPS",
                        help="print the training loss every STEPS steps")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            parser.add_argument(flag, default=f.default, type=str, help=f"default {f.default}")


def _convert(value: str | None, default: object, name: str) -> object:
    if value is None or value == default or not isinstance(value, str):
        return value
    if value.lower() == "none":
        return None
    try:
        if name in ("kind", "device", "precision"):
            return value
        if name == "eval_max_bytes":
            return parse_bytes(value)
        if isinstance(default, float) or name in ("lr",):
            return float(value)
        return int(value)
    except ValueError:
        raise XferError(f"--{name.replace('_', '-')}: not a valid value: {value!r}") from None


def run(args: argparse.Namespace) -> int:
    """Train, print the RunResult as JSON on stdout."""
    from xfer.model import get_model_config
    from xfer.training.config import TrainConfig
    from xfer.training.loop import ConsoleProgress
    from xfer.training.loop import run as train_run

    values = {f.name: _convert(getattr(args, f.name), f.default, f.name)
              for f in fields(TrainConfig)}
    cfg = TrainConfig(**values)
    extra = {}
    for item in args.extra_eval:
        name, sep, path = item.partition("=")
        if not sep or not name:
            raise XferError(f"--extra-eval wants NAME=PATH, got {item!r}")
        extra[name] = Path(path)
    result = train_run(get_model_config(args.model), cfg, args.data, args.lang,
                       parse_bytes(args.budget), args.out, init_checkpoint=args.init,
                       resume_from=args.resume_from, extra_eval=extra,
                       callbacks=[ConsoleProgress(args.progress)])
    print(json.dumps(result.to_dict(), indent=2))
    return 0
