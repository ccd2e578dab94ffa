"""Training throughput of our ByteLM against Hugging Face GPT-2 of the same dimensions.

Both models train a few steps (forward, backward, AdamW) in this process, interleaved so
that load from other processes hits both alike. Prints bytes/s for each, the ratio ours/GPT-2
(in bytes/s and in model FLOP/s), and model FLOP/s as a share of a plain matrix product's
measured peak on the same device and dtype.

Model FLOPs per byte (token) = 6 x (matmul parameters, including the output projection)
+ 12 x layers x attention width x sequence length (PaLM's formula, for both models alike).

    python bench/train_throughput.py --preset tiny
    python bench/train_throughput.py --preset paper --steps 2
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from xfer.model import ByteLM, ModelConfig
from xfer.training.device import resolve_device

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


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Best FLOP/s of an n x n matrix product over a few repetitions."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    best = float("inf")
    for _ in range(reps + 1):
        start = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def make_step(model: torch.nn.Module, logits_of, ids: torch.Tensor, autocast):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)

    def step() -> None:
        with autocast():
            logits = logits_of(model, ids[:, :-1])
        loss = F.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()

    return step


def timed(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--batch", type=int, help="sequences per step (preset default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--threads", type=int)
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
        steps[name]()  # warm-up (allocations, compilation)
    seconds = {name: 0.0 for name in models}
    for _ in range(args.rounds):
        for name in models:
            seconds[name] += timed(steps[name], args.steps)
    dtype = dev.autocast_dtype or torch.float32
    peak = matmul_peak(dev.torch_device, dtype)
    tokens = args.rounds * args.steps * batch * seq_len
    print(f"preset {args.preset}: d {cfg.d_model}, layers {cfg.n_layers}, heads {cfg.n_heads}x"
          f"{cfg.d_head}, mlp {cfg.d_ff}, length {seq_len}, batch {batch}, device {args.device}, "
          f"{dtype}, threads {torch.get_num_threads()}")
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s")
    rate = {}
    for name, (model, _) in models.items():
        bps = tokens / seconds[name]
        rate[name] = bps * flops[name]
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: {params / 1e6:.2f}M params, {bps:,.0f} bytes/s, "
              f"{flops[name] / 1e6:.0f} MFLOP/byte, {rate[name] / 1e9:.1f} GFLOP/s = "
              f"{rate[name] / peak:.0%} of peak")
    print(f"ratio ours/gpt2: {seconds['gpt2'] / seconds['ours']:.2f} in bytes/s, "
          f"{rate['ours'] / rate['gpt2']:.2f} in FLOP/s")


if __name__ == "__main__":
    main()
