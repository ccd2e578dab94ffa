"""Training throughput of our ByteLM against Hugging Face GPT-2 of the same dimensions.

Both models train a few steps (forward, backward, AdamW) on the same batch in this process,
with the same threads, after the same warm-up steps (not timed), alternating round by round so
that load from other processes hits both alike. Prints bytes/s for each (total over the rounds),
the ratio ours/GPT-2 in bytes/s and in model FLOP/s (the median of the per-round ratios, robust
to load spikes), and model FLOP/s as a share of a plain matrix product's peak, measured between
rounds on the same device and dtype (the best of all measurements).

Model FLOPs per byte (token) = 6 x (matmul parameters, including the output projection)
+ 12 x layers x attention width x sequence length (PaLM's formula, for both models alike):
our gated MLP counts its three matrices, GPT-2's its two; lookup tables (embeddings, position
tables, biases, norms) count nothing.

    python bench/train_throughput.py --preset tiny
    python bench/train_throughput.py --preset paper --steps 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from xfer.model import ByteLM, ModelConfig
from xfer.training.device import Device, resolve_device
from xfer.training.loop import fused_option

PRESETS = {  # model dims, sequence length, sequences per step
    "paper": (ModelConfig(name="paper"), 1024, 4),
    "tiny": (ModelConfig(name="tiny", d_model=128, n_layers=2, n_heads=2, d_ff=512), 256, 16),
}


def gpt2_like(cfg: ModelConfig, seq_len: int) -> torch.nn.Module:
    """HF GPT-2 with our width, depth, heads, MLP size and vocabulary; no dropout; SDPA."""
    from transformers import GPT2Config, GPT2LMHeadModel

    conf = GPT2Config(vocab_size=cfg.vocab_size, n_positions=seq_len, n_embd=cfg.d_model,
                      n_layer=cfg.n_layers, n_head=cfg.n_heads, n_inner=cfg.d_ff,
                      resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=1,
                      eos_token_id=1)
    conf._attn_implementation = "sdpa"
    return GPT2LMHeadModel(conf)


def flops_per_token(model: torch.nn.Module, cfg: ModelConfig, seq_len: int) -> float:
    """6 x matmul parameters (2-D weights except lookup tables, plus the tied output
    projection) + 12 x layers x attention width x sequence length."""
    lookups = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    matmul = sum(p.numel() for p in model.parameters() if p.dim() == 2 and id(p) not in lookups)
    matmul += cfg.vocab_size * cfg.d_model
    return 6 * matmul + 12 * cfg.n_layers * cfg.n_heads * cfg.d_head * seq_len


def matmul_peak(device: torch.device, dtype: torch.dtype, clock=time.perf_counter, n: int = 2048,
                reps: int = 5) -> float:
    """Best FLOP/s of an n x n matrix product over a few repetitions (seconds of ``clock``)."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    best = float("inf")
    for _ in range(reps + 1):
        start = clock()
        (a @ b).sum().item()
        best = min(best, clock() - start)
    return 2 * n**3 / best


def make_step(model: torch.nn.Module, logits_of, ids: torch.Tensor, autocast):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            **fused_option(model))  # as xfer's training loop

    def step() -> None:
        with autocast():
            logits = logits_of(model, ids[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()

    return step


def timed(step, steps: int, clock=time.perf_counter) -> float:
    start = clock()
    for _ in range(steps):
        step()
    return clock() - start


def compare(cfg: ModelConfig, seq_len: int, batch: int, dev: Device, *, steps: int = 2,
            rounds: int = 3, warmup: int = 2, compile: bool = False,
            clock=time.perf_counter) -> dict:
    """Ours and GPT-2 trained alternately, round by round, on one batch of ``batch`` x
    ``seq_len`` bytes. Returns bytes (tokens) timed per model, seconds per model, per-round
    seconds, model FLOPs per byte, parameters and the best matmul FLOP/s (the peak)."""
    torch.manual_seed(0)
    ids = torch.randint(3, cfg.vocab_size, (batch, seq_len + 1), device=dev.torch_device)
    ours = ByteLM(cfg).to(dev.torch_device)
    ref = gpt2_like(cfg, seq_len).to(dev.torch_device)
    models = {"ours": (ours, lambda m, x: m(x)), "gpt2": (ref, lambda m, x: m(x).logits)}
    step_of, flops = {}, {}
    for name, (model, fn) in models.items():
        run_model = torch.compile(model) if compile else model
        step_of[name] = make_step(run_model, fn, ids, dev.autocast)
        flops[name] = flops_per_token(model, cfg, seq_len)
        for _ in range(warmup):
            step_of[name]()  # allocations, compilation
    dtype = dev.autocast_dtype or torch.float32
    per_round: list[dict[str, float]] = []
    peak = 0.0
    for _ in range(rounds):
        per_round.append({name: timed(step_of[name], steps, clock) for name in models})
        peak = max(peak, matmul_peak(dev.torch_device, dtype, clock))
    return {"tokens": rounds * steps * batch * seq_len, "dtype": dtype, "peak": peak,
            "seconds": {name: sum(r[name] for r in per_round) for name in models},
            "rounds": per_round, "flops": flops,
            "params": {name: sum(p.numel() for p in m.parameters())
                       for name, (m, _) in models.items()}}


def print_comparison(res: dict, peak_label: str = "of peak") -> dict[str, float]:
    """One line per model (bytes/s, FLOP/s, share of the matmul peak) and the ratios; returns
    bytes/s per model."""
    bps = {}
    for name, seconds in res["seconds"].items():
        bps[name] = res["tokens"] / seconds
        rate = bps[name] * res["flops"][name]
        print(f"{name}: {res['params'][name] / 1e6:.2f}M params, {bps[name]:,.0f} bytes/s, "
              f"{res['flops'][name] / 1e6:.0f} MFLOP/byte, {rate / 1e9:.1f} GFLOP/s = "
              f"{rate / res['peak']:.0%} {peak_label}")
    ratios = sorted(r["gpt2"] / r["ours"] for r in res["rounds"])
    speed = statistics.median(ratios)
    print(f"per-round ratios ours/gpt2 in bytes/s: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"ratio ours/gpt2 (median of rounds): {speed:.2f} in bytes/s, "
          f"{speed * res['flops']['ours'] / res['flops']['gpt2']:.2f} in FLOP/s")
    return bps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model")
    parser.add_argument("--batch", type=int, help="sequences per step (preset default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this process's CPU seconds (use with --threads 1 on a loaded "
                             "machine: other processes then cannot slow either model down)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, seq_len, batch = PRESETS[args.preset]
    batch = args.batch or batch
    dev = resolve_device(args.device, args.precision)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    res = compare(cfg, seq_len, batch, dev, steps=args.steps, rounds=args.rounds,
                  warmup=args.warmup, compile=args.compile, clock=clock)
    print(f"preset {args.preset}: d {cfg.d_model}, layers {cfg.n_layers}, heads {cfg.n_heads}x"
          f"{cfg.d_head}, mlp {cfg.d_ff}, length {seq_len}, batch {batch}, device {args.device}, "
          f"{res['dtype']}, threads {torch.get_num_threads()}, {args.clock} clock")
    print(f"matmul peak: {res['peak'] / 1e9:.1f} GFLOP/s")
    print_comparison(res)


if __name__ == "__main__":
    main()
