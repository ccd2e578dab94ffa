"""``xfer train``: one training run (pretrain, finetune or scratch) without Ray."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

import yaml

from xfer.boundary import open_regular, read_json_object
from xfer.boundary.outputs import check_out as check_out_path
from xfer.errors import XferError
from xfer.io import first_line
from xfer.schema import build, byte_count, check_name


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
    parser.add_argument("--tensorboard", type=Path, metavar="DIR",
                        help="also write the curves as TensorBoard scalars into DIR")
    parser.add_argument("--progress", type=int, default=0, metavar="STEPS",
                        help="print the training loss every STEPS steps")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=f"default {f.default}")
        else:
            parser.add_argument(flag, type=_scalar, default=argparse.SUPPRESS,
                                help=f"default {f.default}")


def _scalar(text: str) -> object:
    """A command-line value read as a YAML scalar (``none``: None), then typed by the same
    schema as a study config's ``train:`` section."""
    if text.lower() == "none":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def check_out(out: Path) -> None:
    """Refuse, before any training step, an ``--out`` that is a symbolic link, is not a folder,
    holds a symbolic link anywhere inside (a run resumes in place, so its checkpoints would be
    written through it), or whose finished result (``result.json``, returned as is by a rerun)
    cannot be read. Temp files an interrupted run left are removed
    (:func:`xfer.boundary.outputs.check_out`); each file a run writes is written whole under a
    temp name and renamed."""
    from xfer.training.checkpoint import RESULT_FILE
    from xfer.training.loop import RunResult

    out = check_out_path(out, "--out", tree=True)
    result = out / RESULT_FILE
    if result.exists() or result.is_symlink():
        data = read_json_object(result, f"{result}", "test_perplexity", finite=False)
        try:
            RunResult.from_dict(data)
        except Exception as exc:  # noqa: BLE001  an untrusted file: any error is one line
            raise XferError(f"{result} is not a run's result ({first_line(exc)}); remove it "
                            "to train again") from None


def run(args: argparse.Namespace) -> int:
    """Train, print the RunResult as JSON on stdout."""
    from xfer.model import get_model_config
    from xfer.training.config import TrainConfig
    from xfer.training.loop import ConsoleProgress
    from xfer.training.loop import run as train_run
    from xfer.training.tensorboard import TensorBoardLog

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    cfg = build(TrainConfig, given, "train")
    check_name(args.lang, "--lang")
    budget = byte_count(args.budget, "--budget")
    check_out(args.out)
    extra = {}
    for item in args.extra_eval:
        name, sep, path = item.partition("=")
        if not sep or not name:
            raise XferError(f"--extra-eval wants NAME=PATH, got {item!r}")
        open_regular(Path(path), f"--extra-eval {name}").close()  # a regular file: no FIFO
        extra[name] = Path(path)
    if args.tensorboard:
        check_out_path(args.tensorboard, "--tensorboard", tree=True)
    board = [TensorBoardLog(args.tensorboard)] if args.tensorboard else []
    try:
        result = train_run(get_model_config(args.model), cfg, args.data, args.lang,
                           budget, args.out, init_checkpoint=args.init,
                           resume_from=args.resume_from, extra_eval=extra,
                           callbacks=[ConsoleProgress(args.progress), *board])
    finally:
        for writer in board:
            writer.close()
    print(json.dumps(result.to_dict(), indent=2))
    return 0
