"""``xfer generate``: sample bytes from a model, to look at what it learned.

    xfer generate my-model --prompt "The " --bytes 200 --temperature 0.8 --seed 1

The model is an export (``xfer export``), a study trial's folder (its best checkpoint) or a
checkpoint folder. The prompt starts a document (the model sees an end-of-document id before
it); sampling stops after ``--bytes`` bytes or at the end of a document. The prompt and the
sample are printed as UTF-8 text, invalid byte sequences as U+FFFD replacement characters.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from xfer.data.vocab import BYTE_OFFSET, EOS_ID, PAD_ID, UNK_ID
from xfer.errors import XferError

DEFAULT_CONTEXT = 1024  # bytes of context when the model's training window is not recorded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``xfer generate``."""
    parser.add_argument("model", type=Path,
                        help="exported model folder, trial folder or checkpoint folder")
    parser.add_argument("--prompt", default="", help="text the sample continues (default: none)")
    parser.add_argument("--bytes", type=int, default=200, help="bytes to sample (default 200)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="softmax temperature; 0 = always the most likely byte (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """Load the model, sample, print prompt + sample as text."""
    if args.bytes < 1:
        raise XferError(f"--bytes must be at least 1, got {args.bytes}")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise XferError(f"--temperature must be a finite number >= 0, got {args.temperature}")
    model, context = load_any(args.model)
    prompt = args.prompt.encode("utf-8")
    sample = sample_bytes(model, prompt, args.bytes, args.temperature, args.seed, context)
    sys.stdout.write(as_text(prompt + sample) + "\n")
    return 0


def as_text(data: bytes) -> str:
    """UTF-8 text of ``data``; each invalid byte sequence becomes U+FFFD."""
    return data.decode("utf-8", errors="replace")


def load_any(path: Path) -> tuple[torch.nn.Module, int]:
    """(model in eval mode, context length in bytes) from an export, a trial folder or a
    checkpoint folder; XferError for anything else."""
    from xfer.model.decoder import WEIGHTS_FILE, ByteLM
    from xfer.training.checkpoint import META_FILE, load_model, read_meta

    path = Path(path)
    if not path.is_dir():
        raise XferError(f"no such model folder: {path}")
    if (path / WEIGHTS_FILE).is_file():
        from xfer.model.export import read_export_info

        context = read_export_info(path).get("seq_len", DEFAULT_CONTEXT)
        return ByteLM.from_pretrained(path).eval(), int(context)
    checkpoint = path / "best" if (path / "best" / META_FILE).is_file() else path
    if not (checkpoint / META_FILE).is_file():
        raise XferError(f"not an exported model, trial folder or checkpoint: {path}")
    meta = read_meta(checkpoint)
    if "train" not in meta:
        raise XferError(f"{checkpoint} is not a language model checkpoint")
    return load_model(checkpoint).eval(), int(meta["train"]["seq_len"])


def next_byte_distribution(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities over the 259 ids: softmax(logits / temperature), pad and unknown ids
    excluded (they never occur in text); temperature 0 puts all mass on the most likely id."""
    logits = logits.float().clone()
    logits[[PAD_ID, UNK_ID]] = -math.inf
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(), logits.numel()).float()
    return torch.softmax(logits / temperature, dim=-1)


@torch.no_grad()
def sample_bytes(model: torch.nn.Module, prompt: bytes, n: int, temperature: float, seed: int,
                 context: int) -> bytes:
    """Up to ``n`` bytes sampled after ``prompt`` (stops early at end of document), each from
    the last ``context`` ids; the same seed gives the same bytes."""
    generator = torch.Generator().manual_seed(seed)
    ids = [EOS_ID, *(b + BYTE_OFFSET for b in prompt)]
    device = next(model.parameters()).device
    out = bytearray()
    for _ in range(n):
        window = torch.tensor([ids[-context:]], device=device)
        probs = next_byte_distribution(model(window)[0, -1].cpu(), temperature)
        token = int(torch.multinomial(probs, 1, generator=generator))
        if token == EOS_ID:
            break
        ids.append(token)
        out.append(token - BYTE_OFFSET)
    return bytes(out)
