"""The GPU check (run by bench/gpu.sh): the paper model's training speed against HF GPT-2.

The paper model's bf16 training throughput against HF GPT-2 at equal dimensions in this
process, on the paper's global batch (512 x 1024 bytes per
optimiser step, in micro-batches with gradient accumulation), with a profile of one step of
each; FlexAttention against the reference attention on this GPU and the attention kernels
timed alone; xfer's own optimiser step (the training loop's train_step) with its host syncs per
step; a 2-worker DDP run when 2 GPUs are there; the projected hours of one 6e9-byte pretrain.

Syncs: each time the host waits for the GPU inside a step (a value read, a blocking copy),
counted by ``torch.cuda.set_sync_debug_mode("warn")``, which warns at every such wait.

Throughput is bytes (= tokens) per second of forward + backward + AdamW, and model FLOP/s
(bench/train_throughput.py's count) as a share of (a) the best bf16 matrix product measured
here and (b) the GPU's datasheet dense bf16 peak when its name is known. DDP: one process per GPU
(NCCL), each with the same per-GPU batch; bytes/s over both. Exit status 1 when FlexAttention
and the reference differ on this device.

    python bench/gpu_check.py              # a CUDA machine (bench/gpu.sh installs what is missing)
    python bench/gpu_check.py --compile    # both models (and xfer's step) under torch.compile
    python bench/gpu_check.py --smoke      # the same code on CPU: tiny dims, fp32, DDP over gloo
    python bench/gpu_check.py --loop-only  # only xfer's own step: syncs per step and bytes/s
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from gpu_profile import attention_check, attention_times, paper_batch_models, profile_step, race
from train_throughput import PRESETS, make_step, print_comparison, timed

from xfer.model import ByteLM, ModelConfig
from xfer.training.device import resolve_device
from xfer.training.parallel import Workers, exit_worker

PRETRAIN_BYTES = 6e9  # one pretrain of the paper
PAPER_TPU_HOURS = 7.0  # the paper's pretrain on a TPU v2-8
# dense bf16 FLOP/s from the vendors' datasheets; first matching name wins
DATASHEET_BF16 = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12),
                  ("B200", 2250e12), ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12),
                  ("A10", 125e12)]
SMOKE = (ModelConfig(name="smoke", d_model=64, n_layers=2, n_heads=2, d_head=32, d_ff=256), 128, 4)
PAPER_GLOBAL_BATCH = 512  # sequences of 1024 bytes per optimiser step, over all GPUs


def datasheet_peak(name: str) -> float | None:
    """The GPU's dense bf16 peak in FLOP/s, None for a name not in DATASHEET_BF16."""
    return next((peak for key, peak in DATASHEET_BF16 if key in name), None)


def projected_hours(bytes_per_s: float, total: float = PRETRAIN_BYTES) -> float:
    """Hours to train on ``total`` bytes at ``bytes_per_s``."""
    return total / bytes_per_s / 3600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg: ModelConfig, seq_len: int, batch: int,
                steps: int, warmup: int, kind: str, precision: str, out: mp.SimpleQueue) -> None:
    """One DDP rank: ``warmup`` + ``steps`` training steps; rank 0 reports bytes/s of all."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    cuda = kind == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    else:
        torch.set_num_threads(1)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    dev = resolve_device(f"cuda:{rank}" if cuda else "cpu", precision)
    torch.manual_seed(rank)
    ids = torch.randint(3, cfg.vocab_size, (batch, seq_len + 1), device=dev.torch_device)
    model = Workers.from_process_group().wrap(ByteLM(cfg).to(dev.torch_device))
    step = make_step(model, lambda m, x: m(x), ids, dev.autocast)
    for _ in range(warmup):
        step()
    dist.barrier()
    seconds = torch.tensor(timed(step, steps), device=dev.torch_device)
    dist.all_reduce(seconds, op=dist.ReduceOp.MAX)  # the slowest rank sets the pace
    if rank == 0:
        out.put(world * steps * batch * seq_len / float(seconds))
    exit_worker()


def loop_step(kind: str, precision: str, cfg: ModelConfig, seq_len: int, batch: int,
              micro: int, steps: int, warmup: int, compile: bool = False
              ) -> tuple[float, float]:
    """xfer's own optimiser step (:func:`xfer.training.loop.train_step`: ``batch`` sequences of
    ``seq_len`` bytes, ``micro`` per forward pass; ``compile``: torch.compile) on generated
    data: host syncs per step (CUDA; NaN on CPU) and bytes/s over ``steps`` steps after
    ``warmup`` untimed ones."""
    from xfer.data import prepare
    from xfer.training.config import TrainConfig
    from xfer.training.loop import setup, train_step
    from xfer.training.parallel import SINGLE

    budget = (steps + warmup + 1) * batch * seq_len
    train = TrainConfig(kind="scratch", seq_len=seq_len, batch_size=batch, micro_batch_size=micro,
                        max_steps=steps + warmup, device=kind, precision=precision,
                        compile=compile)
    with tempfile.TemporaryDirectory() as tmp:
        prepare("synthetic", ["base"], [budget], 4 * seq_len, 4 * seq_len, 0, Path(tmp) / "data")
        r = setup(cfg, train, Path(tmp) / "data", "base", budget, Path(tmp) / "run",
                  init_checkpoint=None, resume_from=None, callbacks=(), workers=SINGLE)
        for _ in range(warmup):
            train_step(r)
        cuda = kind == "cuda"
        if cuda:
            torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            if cuda:
                torch.cuda.set_sync_debug_mode("warn")
            start = time.perf_counter()
            for _ in range(steps):
                train_step(r)
            if cuda:
                torch.cuda.set_sync_debug_mode("default")
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
    syncs = sum("synchroniz" in str(w.message) for w in seen)
    return (syncs / steps if cuda else float("nan")), steps * batch * seq_len / seconds


def ddp_bytes_per_s(world: int, cfg: ModelConfig, seq_len: int, batch: int, steps: int,
                    warmup: int, kind: str, precision: str) -> float:
    """Bytes/s of ``world`` DDP processes (one per GPU, or gloo on CPU) training together."""
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.start_processes(_ddp_worker, args=(world, _free_port(), cfg, seq_len, batch, steps,
                                          warmup, kind, precision, out),
                       nprocs=world, join=True, start_method="spawn")
    return out.get()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny dims: checks the code")
    parser.add_argument("--global-batch", type=int, default=PAPER_GLOBAL_BATCH,
                        help="sequences of 1024 bytes per optimiser step (the paper: 512)")
    parser.add_argument("--micro", type=int, default=32,
                        help="sequences per forward pass on one GPU (gradient accumulation)")
    parser.add_argument("--steps", type=int, default=2, help="timed optimiser steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--loop-only", action="store_true",
                        help="only xfer's own step (syncs per step, bytes/s)")
    parser.add_argument("--no-loop", action="store_true", help="skip xfer's own step")
    parser.add_argument("--no-attention", action="store_true",
                        help="skip FlexAttention's check and the attention kernels' timings")
    args = parser.parse_args()
    if args.micro < 1 or args.global_batch < 1 or args.global_batch % args.micro:
        parser.error(f"--global-batch {args.global_batch} must be a positive multiple of "
                     f"--micro {args.micro}")
    return args


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    if args.smoke:
        kind, precision, gpus, name = "cpu", "fp32", 0, "cpu (smoke: tiny dims, fp32)"
        (cfg, seq_len, args.micro), args.steps, args.rounds, args.warmup = SMOKE, 1, 2, 1
        args.global_batch = 2 * args.micro
        torch.set_num_threads(1)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("gpu_check: torch sees no CUDA GPU (use --smoke to test on CPU)")
        kind, precision, gpus = "cuda", "bf16", torch.cuda.device_count()
        name = torch.cuda.get_device_name(0)
        cfg, seq_len, _ = PRESETS["paper"]
    dev = resolve_device(kind, precision)
    batch, micro = args.global_batch, args.micro
    print(f"device: {name} x {max(gpus, 1)}; torch {torch.__version__}; model {cfg.name}: "
          f"d {cfg.d_model}, layers {cfg.n_layers}, length {seq_len}; {batch} sequences per "
          f"optimiser step in {batch // micro} micro-batches of {micro}; "
          f"{dev.autocast_dtype or torch.float32}{', compiled' if args.compile else ''}")
    failed = False
    if not (args.loop_only or args.no_attention):
        lines, ok = attention_check(dev.torch_device, cfg.n_heads, cfg.d_head, (seq_len - 24,
                                                                                seq_len))
        failed |= not ok
        print(f"FlexAttention vs reference, fp32 ({'MATCH' if ok else 'MISMATCH'}; largest "
              f"difference / max(1, largest entry)):", *lines, sep="\n")
        print(f"attention alone, batch {micro} x {cfg.n_heads} heads x {seq_len} bytes, "
              f"{dev.autocast_dtype or torch.float32}, best of 5:",
              *attention_times(dev.torch_device, micro, cfg.n_heads, seq_len, cfg.d_head,
                               dev.autocast_dtype or torch.float32), sep="\n")
    if not args.no_loop:
        syncs, loop_bps = loop_step(kind, precision, cfg, seq_len, batch, micro,
                                    args.steps * args.rounds, args.warmup, args.compile)
        print(f"xfer train_step: {loop_bps:,.0f} bytes/s, {syncs:g} host syncs per optimiser "
              f"step{' (not counted on CPU)' if args.smoke else ''}")
    if args.loop_only:
        return
    models = paper_batch_models(cfg, seq_len, batch, micro, dev, args.compile)
    res = race(models["step"], batch * seq_len, dev, steps_per_round=args.steps,
               rounds=args.rounds, warmup=args.warmup)
    res.update(flops=models["flops"], params=models["params"])
    print(f"measured matmul peak ({res['dtype']}): {res['peak'] / 1e12:.2f} TFLOP/s")
    bps = print_comparison(res, "of the measured matmul peak")
    sheet = datasheet_peak(name)
    if sheet:
        for model in ("ours", "gpt2"):
            print(f"{model}: {bps[model] * res['flops'][model] / sheet:.1%} of the datasheet "
                  f"bf16 peak ({sheet / 1e12:.0f} TFLOP/s)")
    for model, step in models["step"].items():
        print(f"profile of one optimiser step, {model}:", *profile_step(step, kind == "cuda"),
              sep="\n")
    hours = projected_hours(bps["ours"])
    print(f"projected 6e9-byte pretrain on one device: {hours:.2f} h "
          f"(paper: {PAPER_TPU_HOURS:.0f} h on a TPU v2-8)")
    if args.smoke or gpus >= 2:
        ddp = ddp_bytes_per_s(2, cfg, seq_len, micro, args.steps, args.warmup, kind, precision)
        print(f"DDP, 2 workers ({'gloo on CPU' if args.smoke else 'NCCL'}): {ddp:,.0f} bytes/s "
              f"= {ddp / bps['ours']:.2f} x one worker; projected pretrain "
              f"{projected_hours(ddp):.2f} h")
    else:
        print(f"DDP: skipped, {gpus} GPU")
    print(f"gpu_check: {time.perf_counter() - start:.0f} s")
    if failed:
        raise SystemExit("gpu_check: FlexAttention and the reference differ on this device")


if __name__ == "__main__":
    main()
