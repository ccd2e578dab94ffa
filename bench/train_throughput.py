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
from xfer.training.device import resolve_device
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
    torch.manual_seed(0)
    ids = torch.randint(3, cfg.vocab_size, (batch, seq_len + 1), device=dev.torch_device)
    ours = ByteLM(cfg).to(dev.torch_device)
    ref = gpt2_like(cfg, seq_len).to(dev.torch_device)
    models = {"ours": (ours, lambda m, x: m(x)), "gpt2": (ref, lambda m, x: m(x).logits)}
    steps, flops = {}, {}
    for name, (model, fn) in models.items():
        run_model = torch.compile(model) if args.compile else model
        steps[name] = make_step(run_model, fn, ids, dev.autocast)
        flops[name] = flops_per_token(model, cfg, seq_len)
        for _ in range(args.warmup):
            steps[name]()  # allocations, compilation
    dtype = dev.autocast_dtype or torch.float32
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rounds: list[dict[str, float]] = []
    peak = 0.0
    for _ in range(args.rounds):
        rounds.append({name: timed(steps[name], args.steps, clock) for name in models})
        peak = max(peak, matmul_peak(dev.torch_device, dtype, clock))
    seconds = {name: sum(r[name] for r in rounds) for name in models}
    ratios = sorted(r["gpt2"] / r["ours"] for r in rounds)
    tokens = args.rounds * args.steps * batch * seq_len
    print(f"preset {args.preset}: d {cfg.d_model}, layers {cfg.n_layers}, heads {cfg.n_heads}x"
          f"{cfg.d_head}, mlp {cfg.d_ff}, length {seq_len}, batch {batch}, device {args.device}, "
          f"{dtype}, threads {torch.get_num_threads()}, {args.clock} clock")
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s")
    rate = {}
    for name, (model, _) in models.items():
        bps = tokens / seconds[name]
        rate[name] = bps * flops[name]
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: {params / 1e6:.2f}M params, {bps:,.0f} bytes/s, "
              f"{flops[name] / 1e6:.0f} MFLOP/byte, {rate[name] / 1e9:.1f} GFLOP/s = "
              f"{rate[name] / peak:.0%} of peak")
    speed = statistics.median(ratios)
    print(f"per-round ratios ours/gpt2 in bytes/s: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"ratio ours/gpt2 (median of rounds): {speed:.2f} in bytes/s, "
          f"{speed * flops['ours'] / flops['gpt2']:.2f} in FLOP/s")


if __name__ == "__main__":
    main()
