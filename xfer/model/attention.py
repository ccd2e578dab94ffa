"""Causal self-attention with the T5 relative position bias, on PyTorch's fused kernels.

Attention uses PyTorch's fused kernels with the position bias as an additive float mask. The
bucket index [T, T] is computed once per length (cached) and each layer gathers its own table
through it. Two interchangeable paths compute the same function:

- reference: ``scaled_dot_product_attention`` with bias + causal mask (a mask that needs a
  gradient; CUDA's memory-efficient kernel returns that gradient, CPU falls back to the unfused
  math path with full T x T scores);
- CPU fp32 training (:class:`BandBiasAttention`): the fused CPU flash kernel runs forward and the
  q/k/v backward with the bias as a constant mask (``is_causal`` skips future blocks); the bias
  table's gradient is recomputed only inside the band of distances that have buckets of their
  own (:mod:`xfer.model.band`, shared with FlexAttention). All longer distances share the last
  bucket, and every row of a softmax gradient sums to zero, so that bucket's gradient is minus
  the sum over the band (exact, not an approximation);
- CUDA training (:mod:`xfer.model.flex`): FlexAttention, the bias read inside one compiled
  kernel, forward and backward (the bias table's gradient included).
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from xfer.errors import XferError
from xfer.model.band import PositionIndex, band_bias_grad
from xfer.model.flex import flex_attention_biased


def relative_position_bucket(query_pos: torch.Tensor, key_pos: torch.Tensor,
                             num_buckets: int, max_distance: int) -> torch.Tensor:
    """T5's causal (unidirectional) relative-position bucket of every query/key pair.

    The distance n = query - key (in bytes, clamped at 0 for future keys) maps to bucket n when
    n < num_buckets/2, and logarithmically to the remaining buckets up to ``max_distance``;
    every larger distance shares the last bucket. Returns int64 of shape [Q, K].
    """
    n = (query_pos[:, None] - key_pos[None, :]).clamp(min=0)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    log_ratio = torch.log(n.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).to(torch.long)
    large = large.clamp(max=num_buckets - 1)
    return torch.where(is_small, n, large)


def causal_mask(length: int, device: torch.device) -> torch.Tensor:
    """Additive [T, T] mask: 0 where key <= query, -inf where the key lies in the future."""
    return torch.full((length, length), float("-inf"), device=device).triu(diagonal=1)


def position_index(length: int, num_buckets: int, max_distance: int,
                   device: torch.device) -> PositionIndex:
    """The :class:`PositionIndex` of sequences of ``length`` bytes."""
    pos = torch.arange(length, device=device)
    by_distance = relative_position_bucket(pos[-1:], pos.flip(0), num_buckets, max_distance)[0]
    far = int(by_distance[-1])
    band = int((by_distance != far).sum())  # buckets never decrease with the distance
    return PositionIndex(relative_position_bucket(pos, pos, num_buckets, max_distance), band,
                         by_distance[:band].contiguous(), far)


def bias_of(table: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
    """One layer's position bias [H, T, T] from its table [buckets, H] and the bucket index."""
    return table.t()[:, buckets]


def toeplitz_bias(table: torch.Tensor, index: PositionIndex) -> torch.Tensor:
    """Contiguous [H, T, T] bias of the causal part (key <= query) without a [T, T] gather.

    The bias depends only on the distance, so each row is a window of one [H, 2T-1] vector.
    Entries above the diagonal are the distance-0 bias (the flash kernel's ``is_causal``
    never reads them). Equal to :func:`bias_of` on and below the diagonal.
    """
    length = index.buckets.shape[0]
    by_distance = table.t()[:, index.by_distance]  # [H, T]
    line = torch.cat([by_distance.flip(1), by_distance[:, :1].expand(-1, length - 1)], 1)
    return line.unfold(1, length, 1).flip(1)


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, table: torch.Tensor,
                        index: PositionIndex) -> torch.Tensor:
    """Unscaled causal attention [B, H, T, Dh] with the bias + causal mask as a float mask."""
    length = q.shape[2]
    mask = bias_of(table, index.buckets) + causal_mask(length, q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), scale=1.0)


class BandBiasAttention(torch.autograd.Function):
    """CPU causal attention with a learned position bias: fused flash kernel for q, k, v and
    a band recompute for the bias table's gradient (see the module docstring)."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, table: torch.Tensor,
                index: PositionIndex) -> torch.Tensor:
        mask = toeplitz_bias(table, index).unsqueeze(0)
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, True, attn_mask=mask, scale=1.0)
        ctx.save_for_backward(q, k, v, table, out, lse, mask)
        ctx.index = index
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        q, k, v, table, out, lse, mask = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        dq, dk, dv = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            grad_out, q, k, v, out, lse, 0.0, True, attn_mask=mask, scale=1.0)
        dtable = None
        if ctx.needs_input_grad[3]:
            dtable = band_bias_grad(q, k, v, out, lse, grad_out, table, ctx.index)
        return dq, dk, dv, dtable, None


ATTENTION_PATHS = ("auto", "fused", "reference")
ATTENTION_ENV = "XFER_ATTENTION"  # a new model's path when set (to compare the kernels' speed)
BAND_PATH_MIN_RATIO = 4  # measured: at T = 256 (band 113) the math path trains faster


def _check_path(path: str) -> str:
    if path not in ATTENTION_PATHS:
        raise XferError(f"attention path must be one of {', '.join(ATTENTION_PATHS)}, "
                        f"got {path!r}")
    return path


def default_attention_path() -> str:
    """A new model's attention path: ``$XFER_ATTENTION`` when set, else ``auto``."""
    return _check_path(os.environ.get(ATTENTION_ENV, "auto"))


def kernel_of(device_type: str, dtype_fits: bool, training: bool, length: int, band: int,
              path: str = "auto") -> str:
    """Which kernel computes the attention: ``flex``, ``band`` or ``reference``.

    ``path`` (one of :data:`ATTENTION_PATHS`; speed only, every kernel computes the same
    function): ``reference`` = SDPA with mask, on every device. CUDA: ``fused`` = FlexAttention;
    ``auto`` = FlexAttention while ``training`` (gradients recorded), else the reference
    (evaluation at any length, no compilation per length). CPU with ``dtype_fits`` (q and table
    in fp32): ``fused`` = :class:`BandBiasAttention`; ``auto`` = band when ``length`` >= 4 x
    ``band`` (bytes; the band recompute is then cheap). Other devices (XLA): the reference.
    """
    _check_path(path)
    if device_type == "cuda" and path != "reference" and (path == "fused" or training):
        return "flex"
    long_enough = length >= BAND_PATH_MIN_RATIO * band
    if device_type == "cpu" and dtype_fits and (
            path == "fused" or (path == "auto" and long_enough)):
        return "band"
    return "reference"


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, table: torch.Tensor,
              index: PositionIndex, path: str = "auto") -> torch.Tensor:
    """Causal attention [B, H, T, Dh] with position bias, by the kernel :func:`kernel_of`
    picks for ``path``; every kernel computes the same function."""
    training = torch.is_grad_enabled() and (q.requires_grad or table.requires_grad)
    dtype_fits = q.dtype == table.dtype == torch.float32
    kernel = kernel_of(q.device.type, dtype_fits, training, q.shape[2], index.band, path)
    if kernel == "flex":
        return flex_attention_biased(q, k, v, table, index)
    if kernel == "band":
        return BandBiasAttention.apply(q, k, v, table, index)
    return reference_attention(q, k, v, table, index)
