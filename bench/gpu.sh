#!/usr/bin/env bash
# The GPU check (issues 17 and 29), from any folder, on a machine with an NVIDIA GPU:
#   bash bench/gpu.sh              # installs what is missing (.venv-gpu), prints within 10 min:
#                                  # FlexAttention against the reference attention on this GPU
#                                  # (exit 1 if they differ) and the attention kernels alone;
#                                  # xfer's own train_step: bytes/s, host syncs per optimiser step;
#                                  # ours vs HF GPT-2 at equal dims, bf16 autocast, the paper's
#                                  # 512 x 1024 bytes per step (micro-batches of 32, accumulated):
#                                  # bytes/s, share of the datasheet bf16 peak, a profile of one
#                                  # step of each (top kernels, attention's share); 2-GPU DDP when
#                                  # there are 2 GPUs; projected hours of a 6e9-byte pretrain
#   bash bench/gpu.sh --compile --no-loop --no-attention  # ours vs GPT-2 under torch.compile
#   bash bench/gpu.sh --smoke      # the same code on CPU with tiny dims: no GPU, no install
# Other options (--micro, --global-batch, --steps, --rounds): python bench/gpu_check.py -h
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD RAY_USAGE_STATS_ENABLED=0
if [ "${1:-}" = --smoke ]; then
  exec timeout 600 python3 bench/gpu_check.py "$@"
fi
start=$(date +%s)
ready='import torch, transformers; assert torch.cuda.is_available()'
if ! python3 -c "$ready" 2>/dev/null; then
  [ -x .venv-gpu/bin/python ] || python3 -m venv .venv-gpu
  . .venv-gpu/bin/activate
  if ! python -c "$ready" 2>/dev/null; then
    python -m pip install -q --upgrade pip
    python -m pip install -q torch==2.13.0 "transformers>=4.45" numpy  # PyPI's Linux torch: CUDA
  fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "gpu.sh: ready in $(($(date +%s) - start)) s"
timeout $((600 - ($(date +%s) - start))) python3 bench/gpu_check.py "$@"
