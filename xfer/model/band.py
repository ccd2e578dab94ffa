"""What every attention kernel shares: the bucket index of the T5 relative position bias
(:class:`PositionIndex`), and the band recompute of the bias table's gradient
(:func:`band_bias_grad`), used by the CPU path (:class:`xfer.model.attention.BandBiasAttention`)
and by FlexAttention's ``band`` table gradient (:mod:`xfer.model.flex`).

All distances from ``band`` on share the last bucket, and every row of a softmax gradient sums
to zero, so that bucket's gradient is minus the sum over the band (exact, not an approximation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


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


BAND_BLOCK = 64  # query rows per block of the band recompute (measured fastest at T = 1024)


def band_bias_grad(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                    lse: torch.Tensor, grad_out: torch.Tensor, table: torch.Tensor,
                    index: PositionIndex) -> torch.Tensor:
    """Gradient of the loss w.r.t. the bias table [buckets, H] from the band of distances.

    Queries go in blocks of ``BAND_BLOCK`` rows; each block's scores are one matrix product with
    the window of keys from ``before`` positions ahead of the block (the band W - 1 rounded up
    to 16: odd sizes run at half speed) to its end. Row r of that [w, before + w] product holds
    the distances W-1 .. 0 at columns r + before - W + 1 onwards, so a strided view with row
    stride before + w + 1 is the band itself, column j = distance W-1-j; keys before position
    0 are zero padding, masked out. dS = P * (dP - rowsum(dO * O)) is summed per distance.
    """
    band = index.band
    grad = torch.zeros_like(table)
    if band == 0:
        return grad
    length, width = q.shape[2], BAND_BLOCK
    before = -(-(band - 1) // 16) * 16
    blocks = -(-length // width)
    pad = blocks * width - length
    span = before + width

    def rows(x: torch.Tensor) -> torch.Tensor:  # [B, H, blocks, w, ...]
        return F.pad(x, (0, 0, 0, pad) if x.dim() == 4 else (0, pad)).unflatten(2, (blocks, width))

    def in_band(a: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:  # [B, H, blocks, w, W]
        windows = F.pad(keys, (0, 0, before, pad)).unfold(2, span, width).mT.contiguous()
        scores = a @ windows.mT  # [B, H, blocks, w, span]
        return scores.as_strided((*scores.shape[:-1], band), (*scores.stride()[:-2], span + 1, 1),
                                 scores.storage_offset() + before - band + 1)

    first = -(-before // width)  # blocks whose band reaches before position 0
    arange = lambda n: torch.arange(n, device=q.device)  # noqa: E731
    key = arange(first)[:, None, None] * width + arange(width)[:, None] - band + 1 + arange(band)
    bias = table.t()[:, index.band_buckets.flip(0)][:, None, None, :]  # [H, 1, 1, W]
    prob = (in_band(rows(q), k) + bias).sub_(rows(lse).unsqueeze(-1)).exp_()
    prob[:, :, :first].masked_fill_(key < 0, 0.0)
    delta = rows((grad_out * out).sum(-1)).unsqueeze(-1)
    dscore = (in_band(rows(grad_out), v) - delta).mul_(prob)
    per_distance = dscore.sum(0).sum(1).sum(1).flip(-1)  # [H, W], distance 0 first
    grad.index_add_(0, index.band_buckets, per_distance.t())
    grad[index.far_bucket] -= per_distance.sum(1)
    return grad
