"""``xfer generate``: sample bytes from a model, to look at what it learned.

    xfer generate my-model --prompt "The " --bytes 200 --temperature 0.8 --seed 1

The model is an export (``xfer export``), a study trial's folder (its best checkpoint) or a
checkpoint folder. The prompt starts a document (the model sees an end-of-document id before
it); sampling stops after ``--bytes`` bytes or at the end of a document. The prompt and the
sample are printed as UTF-8 text, invalid byte sequences as U+FFFD replacement characters.
"""

from __future__ import annotations

import argparse
import codecs
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from xfer.data.vocab import BYTE_OFFSET, EOS_ID, PAD_ID, UNK_ID
from xfer.errors import XferError

DEFAULT_CONTEXT = 1024  # bytes of context when the model's training window is not recorded
MAX_BYTES = 1_000_000  # --bytes: the most bytes one command samples (printed as they come)
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-3, 1000.0  # --temperature: 0 (greedy), or in between
MAX_SEED = 2**63 - 1  # --seed: 0 up to this (torch generators take 64-bit seeds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``xfer generate``."""
    parser.add_argument("model", type=Path,
                        help="exported model folder, trial folder or checkpoint folder")
    parser.add_argument("--prompt", default="",
                        help="text the sample continues (default: none; bytes that are not "
                             "UTF-8 are passed as they are)")
    parser.add_argument("--bytes", type=int, default=200,
                        help=f"bytes to sample, 1 to {MAX_BYTES:,} (default 200)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help=f"softmax temperature: 0 (always the most likely byte), or "
                             f"{MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g} (default 1)")
    parser.add_argument("--seed", type=int, default=0,
                        help="sampling seed, 0 to 2**63-1 (default 0)")


def check_options(args: argparse.Namespace) -> bytes:
    """Refuse out-of-range options (one line); the prompt's bytes."""
    if not 1 <= args.bytes <= MAX_BYTES:
        raise XferError(f"--bytes must be from 1 to {MAX_BYTES:,}, got {args.bytes}")
    if not (args.temperature == 0 or MIN_TEMPERATURE <= args.temperature <= MAX_TEMPERATURE):
        raise XferError(f"--temperature must be 0 (greedy) or from {MIN_TEMPERATURE:g} to "
                        f"{MAX_TEMPERATURE:g}, got {args.temperature}")
    if not 0 <= args.seed <= MAX_SEED:
        raise XferError(f"--seed must be from 0 to 2**63-1, got {args.seed}")
    try:  # argv bytes that are not UTF-8 arrive as surrogate escapes: give them back as bytes
        return args.prompt.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise XferError("--prompt holds characters that are not text (lone surrogates)") from None


def run(args: argparse.Namespace) -> int:
    """Load the model, then print prompt + sample as text while it is sampled."""
    prompt = check_options(args)
    model, context = load_any(args.model)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    sys.stdout.write(decoder.decode(prompt))
    for chunk in stream_bytes(model, prompt, args.bytes, args.temperature, args.seed, context):
        sys.stdout.write(decoder.decode(chunk))
        sys.stdout.flush()
    sys.stdout.write(decoder.decode(b"", final=True) + "\n")
    return 0


def as_text(data: bytes) -> str:
    """UTF-8 text of ``data``; each invalid byte sequence becomes U+FFFD."""
    return data.decode("utf-8", errors="replace")


def load_any(path: Path) -> tuple[torch.nn.Module, int]:
    """(model in eval mode, context length in bytes) from an export, a trial folder or a
    checkpoint folder, each file checked before use; XferError for anything else."""
    from xfer.model.decoder import WEIGHTS_FILE
    from xfer.model.stored import (
        META_FILE,
        checked_context,
        context_length,
        load_export,
        load_model,
        read_meta,
    )

    path = Path(path)
    if not path.is_dir():
        raise XferError(f"no such model folder: {path}")
    if (path / WEIGHTS_FILE).exists():  # a FIFO or device here is refused by the loader
        model, info = load_export(path)
        context = checked_context(info.get("seq_len", DEFAULT_CONTEXT),
                                  f"{path / 'config.json'}: xfer.seq_len")
        return model.eval(), context
    checkpoint = path / "best" if (path / "best" / META_FILE).exists() else path
    if not (checkpoint / META_FILE).exists():
        raise XferError(f"not an exported model, trial folder or checkpoint: {path}")
    meta = read_meta(checkpoint)
    if "train" not in meta:
        raise XferError(f"{checkpoint} is not a language model checkpoint")
    context = context_length(meta, checkpoint / META_FILE)
    return load_model(checkpoint).eval(), context


def next_byte_distribution(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities over the 259 ids: softmax(logits / temperature), pad and unknown ids
    excluded (they never occur in text); temperature 0 puts all mass on the most likely id.
    Computed in float64 from the logits less their maximum, so a tiny temperature gives the
    greedy choice, not inf or NaN."""
    logits = logits.double().clone()
    logits[[PAD_ID, UNK_ID]] = -math.inf
    if not torch.isfinite(logits[logits != -math.inf]).all():
        raise XferError("the model's next-byte scores are not finite (its weights hold NaN or "
                        "inf)")
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(), logits.numel()).double()
    return torch.softmax((logits - logits.max()) / temperature, dim=-1)


@torch.no_grad()
def stream_bytes(model: torch.nn.Module, prompt: bytes, n: int, temperature: float, seed: int,
                 context: int) -> Iterator[bytes]:
    """Up to ``n`` bytes sampled after ``prompt``, one at a time (stops early at end of
    document), each from the last ``context`` ids; the same seed gives the same bytes."""
    generator = torch.Generator().manual_seed(seed)
    ids = [EOS_ID, *(b + BYTE_OFFSET for b in prompt)]
    device = next(model.parameters()).device
    for _ in range(n):
        window = torch.tensor([ids[-context:]], device=device)
        probs = next_byte_distribution(model(window)[0, -1].cpu(), temperature)
        token = int(torch.multinomial(probs, 1, generator=generator))
        if token == EOS_ID:
            return
        ids.append(token)
        yield bytes([token - BYTE_OFFSET])


def sample_bytes(model: torch.nn.Module, prompt: bytes, n: int, temperature: float, seed: int,
                 context: int) -> bytes:
    """All of :func:`stream_bytes` at once."""
    return b"".join(stream_bytes(model, prompt, n, temperature, seed, context))
