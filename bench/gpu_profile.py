"""Pieces of the GPU check (bench/gpu_check.py): a training step with gradient accumulation,
ours against GPT-2 on the paper's global batch, a profile of one step, the attention kernels
timed alone, and FlexAttention against the reference attention on this device.

Profile: one optimiser step under ``torch.profiler``; on CUDA the GPU kernels ranked by their
own time, on CPU the operators. Attention's share is the time of the kernels whose names say
attention (``ATTENTION_NAMES``; in a compiled model Triton *template* kernels, ``triton_tem``,
are FlexAttention's: the matrix products stay cuBLAS calls unless Inductor's max-autotune is on).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile
from train_throughput import flops_per_token, gpt2_like, matmul_peak, timed

from xfer.model import ByteLM, ModelConfig
from xfer.model.attention import position_index, reference_attention
from xfer.model.flex import flex_attention_biased
from xfer.training.device import Device
from xfer.training.loop import fused_option

ATTENTION_NAMES = re.compile(r"flex|attention|attn|fmha|flash|sdpa|softmax|triton_tem|BandBias",
                             re.IGNORECASE)


def accumulating_step(model: torch.nn.Module, logits_of: Callable, ids: torch.Tensor, micro: int,
                      autocast: Callable) -> Callable[[], None]:
    """One AdamW step (xfer's settings) on all of ``ids`` [N, T+1]: N / ``micro`` forward and
    backward passes of ``micro`` sequences, each loss scaled by micro / N; one host sync."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1,
                            **fused_option(model))
    chunks = ids.split(micro)

    def step() -> None:
        total = torch.zeros((), device=ids.device)
        for chunk in chunks:
            with autocast():
                logits = logits_of(model, chunk[:, :-1])
            loss = F.cross_entropy(logits.float().flatten(0, 1), chunk[:, 1:].flatten())
            (loss * (chunk.shape[0] / ids.shape[0])).backward()
            total += loss.detach()
        opt.step()
        opt.zero_grad(set_to_none=True)
        total.item()

    return step


def paper_batch_models(cfg: ModelConfig, seq_len: int, global_batch: int, micro: int,
                       dev: Device, compile: bool) -> dict:
    """Ours and GPT-2 (equal dimensions) on one shared batch of ``global_batch`` sequences of
    ``seq_len`` bytes: per model its step (:func:`accumulating_step`), model FLOPs per byte and
    parameters."""
    torch.manual_seed(0)
    ids = torch.randint(3, cfg.vocab_size, (global_batch, seq_len + 1), device=dev.torch_device)
    models = {"ours": (ByteLM(cfg), lambda m, x: m(x)),
              "gpt2": (gpt2_like(cfg, seq_len), lambda m, x: m(x).logits)}
    out = {"step": {}, "flops": {}, "params": {}}
    for name, (model, logits_of) in models.items():
        model.to(dev.torch_device)
        run = torch.compile(model) if compile else model
        out["step"][name] = accumulating_step(run, logits_of, ids, micro, dev.autocast)
        out["flops"][name] = flops_per_token(model, cfg, seq_len)
        out["params"][name] = sum(p.numel() for p in model.parameters())
    return out


def race(steps: dict[str, Callable[[], None]], bytes_per_step: int, dev: Device, *, steps_per_round:
         int, rounds: int, warmup: int) -> dict:
    """The steps after ``warmup`` untimed calls each (compilation, allocation), timed
    alternately round by round (load hits both alike), with the best bf16 (or fp32) matrix
    product between rounds; in the form :func:`train_throughput.print_comparison` reads."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    dtype = dev.autocast_dtype or torch.float32
    rounds_s, peak = [], 0.0
    for _ in range(rounds):
        rounds_s.append({name: timed(step, steps_per_round) for name, step in steps.items()})
        peak = max(peak, matmul_peak(dev.torch_device, dtype))
    return {"tokens": rounds * steps_per_round * bytes_per_step, "dtype": dtype, "peak": peak,
            "rounds": rounds_s, "seconds": {n: sum(r[n] for r in rounds_s) for n in steps}}


def profile_step(step: Callable[[], None], cuda: bool, top: int = 8) -> list[str]:
    """Lines: the ``top`` kernels (CUDA) or operators (CPU) of one ``step`` by their own time,
    attention's share of that time, and (CUDA) how busy the GPU was over the step's wall time."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        wall_us = (time.perf_counter() - start) * 1e6
    if cuda:
        rows = [(e.key, e.self_device_time_total) for e in prof.key_averages()
                if e.device_type == torch.autograd.DeviceType.CUDA and e.self_device_time_total]
    else:
        rows = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()
                if e.self_cpu_time_total]
    rows.sort(key=lambda r: -r[1])
    total = sum(us for _, us in rows) or 1.0
    attention = sum(us for name, us in rows if ATTENTION_NAMES.search(name))
    what = "GPU kernels" if cuda else "CPU operators"
    lines = [f"  {us / total:6.1%} {us / 1e3:9.2f} ms  {name[:90]}" for name, us in rows[:top]]
    lines.append(f"  attention {attention / total:.1%} of {total / 1e3:.1f} ms of {what}; "
                 f"step wall {wall_us / 1e3:.1f} ms"
                 + (f", GPU busy {total / wall_us:.0%} of it" if cuda else ""))
    return lines


def _attention_inputs(batch: int, heads: int, length: int, d_head: int, buckets: int,
                      distance: int, device: torch.device, dtype: torch.dtype):
    gen = torch.Generator(device=device).manual_seed(0)
    shape = (batch, heads, length, d_head)
    q, k, v, grad = (torch.randn(shape, device=device, dtype=dtype, generator=gen)
                     for _ in range(4))
    table = torch.randn(buckets, heads, device=device, dtype=torch.float32, generator=gen) * 2
    return q * d_head ** -0.5, k, v, table, grad, position_index(length, buckets, distance, device)


def attention_check(device: torch.device, heads: int, d_head: int, lengths: tuple[int, ...],
                    tolerance: float = 1e-4) -> tuple[list[str], bool]:
    """FlexAttention (compiled on CUDA) against the reference in fp32 on ``device``: the
    largest difference of the output and of the q, k, v and table gradients, each relative to
    the reference's largest entry when that is above 1; the table's gradient from the kernel at
    every length, from the band recompute at the last. On CPU the forward only (FlexAttention
    refuses gradients there; tests/test_flex_attention.py checks them with its math)."""
    grads = device.type == "cuda"
    lines, ok = [], True
    runs = [(length, "kernel") for length in lengths] + [(lengths[-1], "band")]
    for length, table_gradient in runs:
        q, k, v, table, grad, index = _attention_inputs(2, heads, length, d_head, 32, 128, device,
                                                        torch.float32)
        flex = partial(flex_attention_biased, table_gradient=table_gradient)
        results = []
        for fn in (flex, reference_attention):
            inputs = [x.clone().requires_grad_(grads) for x in (q, k, v, table)]
            out = fn(*inputs, index)
            results.append([out, *torch.autograd.grad(out, inputs, grad)] if grads else [out])
        errors = [float((a - b).abs().max() / b.abs().max().clamp(min=1.0))
                  for a, b in zip(*results, strict=True)]
        ok &= max(errors) <= tolerance and all(e == e for e in errors)  # NaN fails too
        named = zip(("out", "dq", "dk", "dv", "dtable"), errors, strict=False)  # CPU: out only
        lines.append(f"  T {length}, table gradient by {table_gradient}: "
                     + ", ".join(f"{n} {e:.1e}" for n, e in named))
    return lines, ok


def attention_times(device: torch.device, batch: int, heads: int, length: int, d_head: int,
                    dtype: torch.dtype, reps: int = 5) -> list[str]:
    """Lines: milliseconds of one attention forward + backward (CPU: forward) at these shapes,
    for FlexAttention with the bias table's gradient (by its kernel; by the band recompute),
    FlexAttention with a constant table (the cost of that gradient), SDPA with the bias as a
    float mask (the reference path) and causal SDPA without bias (GPT-2's kernel)."""
    q, k, v, table, grad, index = _attention_inputs(batch, heads, length, d_head, 32, 128, device,
                                                    dtype)
    backward = device.type == "cuda"
    causal = lambda q, k, v, table, index: F.scaled_dot_product_attention(  # noqa: E731
        q, k, v, is_causal=True)
    kernels = {"flex, table gradient by kernel": (flex_attention_biased, True),
               "flex, table gradient by band": (partial(flex_attention_biased,
                                                        table_gradient="band"), True),
               "flex, constant table": (flex_attention_biased, False),
               "reference (SDPA + float mask)": (reference_attention, True),
               "causal SDPA, no bias (GPT-2)": (causal, False)}
    lines = []
    for name, (fn, table_grad) in kernels.items():
        inputs = [x.clone().requires_grad_(backward) for x in (q, k, v)]
        inputs += [table.clone().requires_grad_(backward and table_grad), index]
        best = float("inf")
        for _ in range(reps + 2):  # the first two compile and warm up
            if backward:
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = fn(*inputs)
            if backward:
                out.backward(grad)
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        lines.append(f"  {name:34s} {best * 1e3:8.2f} ms")
    return lines
