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
  own. All longer distances share the last bucket, and every row of a softmax gradient sums to
  zero, so that bucket's gradient is minus the sum over the band (exact, not an approximation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


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


@dataclass(frozen=True)
class PositionIndex:
    """Bucket index shared by all layers for one sequence length (computed once, cached).

    ``buckets`` [T, T] int64 (query, key); ``band`` = the shortest distance (bytes) from which
    every longer distance up to T-1 shares one bucket, ``far_bucket``; ``band_buckets`` [band]
    is the bucket of each distance below ``band``.
    """

    buckets: torch.Tensor
    band: int
    band_buckets: torch.Tensor
    far_bucket: int

    @property
    def by_distance(self) -> torch.Tensor:
        """Bucket of every distance 0 .. T-1 (bytes), int64 [T]."""
        length = self.buckets.shape[0]
        far = self.band_buckets.new_full((length - self.band,), self.far_bucket)
        return torch.cat([self.band_buckets, far])


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


def _band_bias_grad(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                    lse: torch.Tensor, grad_out: torch.Tensor, table: torch.Tensor,
                    index: PositionIndex) -> torch.Tensor:
    """Gradient of the loss w.r.t. the bias table [buckets, H] from the band of distances.

    Queries go in blocks of w rows, w = the band W rounded up to a multiple of 16 (matrix
    products of odd sizes run at half speed). Row r of a block reaches distances 0..w-1 through
    the keys of its own block at columns c <= r (distance r - c) and of the block before at
    c > r (distance r - c + w); folding the two w x w score matrices on the diagonal gives one
    w x w matrix holding each row's distances 0..w-1 once, distance (r - c) mod w.
    dS = P * (dP - rowsum(dO * O)) is formed there and summed per distance below W.
    """
    batch, heads, length, dim = q.shape
    band = index.band
    grad = torch.zeros_like(table)
    if band == 0:
        return grad
    width = -(-band // 16) * 16
    blocks = -(-length // width)
    pad = blocks * width - length

    def rows(x: torch.Tensor, before: int = 0) -> torch.Tensor:  # [B, H, blocks, w, ...]
        shift = (before, pad - before)
        return F.pad(x, (0, 0, *shift) if x.dim() == 4 else shift).unflatten(2, (blocks, width))

    def fold(a: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:  # a . keys^T, folded
        return torch.where(lower, a @ rows(keys).mT, a @ rows(keys, before=width).mT)

    row = torch.arange(width, device=q.device)
    lower = row[:, None] >= row[None, :]  # own block (c <= r); above: the block before
    distance = (row[:, None] - row[None, :]) % width  # [w, w]
    in_band = distance < band
    bucket = index.band_buckets[distance.clamp(max=band - 1)].masked_fill(~in_band,
                                                                         index.far_bucket)
    bias = table.t()[:, bucket][None, :, None].repeat(1, 1, blocks, 1, 1)  # [1, H, blocks, w, w]
    bias[:, :, 0].masked_fill_(~lower, float("-inf"))  # no keys before the first block
    prob = fold(rows(q), k).add_(bias).sub_(rows(lse).unsqueeze(-1)).exp_()
    delta = rows((grad_out * out).sum(-1)).unsqueeze(-1)
    dscore = fold(rows(grad_out), v).sub_(delta).mul_(prob).sum(0).sum(1)  # [H, w, w]
    per_distance = dscore.new_zeros(heads, band).index_add_(1, distance[in_band],
                                                            dscore[:, in_band])
    grad.index_add_(0, index.band_buckets, per_distance.t())
    grad[index.far_bucket] -= per_distance.sum(1)
    return grad


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
            dtable = _band_bias_grad(q, k, v, out, lse, grad_out, table, ctx.index)
        return dq, dk, dv, dtable, None


CPU_ATTENTION = ("auto", "fused", "reference")
BAND_PATH_MIN_RATIO = 4  # measured: at T = 256 (band 113) the math path trains faster


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, table: torch.Tensor,
              index: PositionIndex, cpu_path: str = "auto") -> torch.Tensor:
    """Causal attention [B, H, T, Dh] with position bias; both paths compute the same function.

    ``cpu_path`` (CPU fp32 only): ``fused`` = :class:`BandBiasAttention`; ``reference`` =
    SDPA with mask; ``auto`` = fused when T >= 4 x band (the band recompute is then cheap).
    """
    fits = q.device.type == "cpu" and q.dtype == table.dtype == torch.float32
    long_enough = q.shape[2] >= BAND_PATH_MIN_RATIO * index.band
    if fits and (cpu_path == "fused" or (cpu_path == "auto" and long_enough)):
        return BandBiasAttention.apply(q, k, v, table, index)
    return reference_attention(q, k, v, table, index)
