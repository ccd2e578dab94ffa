"""A real process for fault injection: ``python -m tests.fault_worker train|prepare ...``.

``train DATA OUT`` runs one tiny ``xfer.training.run`` (d_model 32) and prints its result as JSON;
``prepare OUT`` prepares the tiny dataset. With ``--die-before NAME --nth N`` the process SIGKILLs
itself just before the N-th ``os.replace``/``os.rename`` whose destination is named ``NAME`` (or
starts with it, for ``step-``): a crash between writing a temp file and renaming it into place.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

LANG = "base"
BUDGETS = [8000, 16000]
BUDGET = 8000


def tiny_model():  # noqa: ANN201 - ModelConfig, imported lazily
    from xfer.model import ModelConfig

    return ModelConfig(name="fault-d32", d_model=32, n_layers=1, n_heads=1, d_head=32, d_ff=64)


def tiny_train(**changes: object):  # noqa: ANN201 - TrainConfig
    from xfer.training.config import TrainConfig

    base = dict(kind="scratch", seq_len=64, batch_size=4, micro_batch_size=4, epochs=3, lr=3e-3,
                eval_every=5, checkpoint_every=3, keep_checkpoints=2, threads=1, seed=0)
    return TrainConfig(**{**base, **changes})


def prepare_tiny(out: Path) -> list[Path]:
    from xfer.data import prepare

    return prepare("synthetic", [LANG], BUDGETS, 2000, 2000, 0, out)


def train_tiny(data: Path, out: Path, **changes: object) -> dict:
    from xfer.training.loop import run

    return run(tiny_model(), tiny_train(**changes), data, LANG, BUDGET, out).to_dict()


def die_before(name: str, nth: int) -> None:
    """Patch os.replace and os.rename: SIGKILL this process before the ``nth`` rename whose
    destination's name equals ``name`` (or starts with it when ``name`` ends with '-')."""
    seen = {"n": 0}

    def wrap(real):  # noqa: ANN001, ANN202
        def renamer(src, dst, *args, **kwargs):  # noqa: ANN001, ANN202
            dname = Path(dst).name
            if dname == name or (name.endswith("-") and dname.startswith(name)):
                seen["n"] += 1
                if seen["n"] == nth:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(src, dst, *args, **kwargs)
        return renamer

    os.replace = wrap(os.replace)
    os.rename = wrap(os.rename)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("train", "prepare"))
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--die-before", default=None)
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if args.die_before:
        die_before(args.die_before, args.nth)
    if args.what == "prepare":
        prepare_tiny(args.paths[0])
        print(json.dumps({"prepared": str(args.paths[0])}))
    else:
        print(json.dumps(train_tiny(args.paths[0], args.paths[1], epochs=args.epochs)))


if __name__ == "__main__":
    main()
