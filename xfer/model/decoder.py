"""The byte-level decoder of the paper: a T5-style decoder-only transformer over 259 byte ids.

Pre-RMSNorm blocks, gated-GELU MLP, T5 relative position bias (causal buckets, one table per
layer, no absolute positions), tied input/output embeddings with logits scaled by 1/sqrt(d_model),
no dropout. Initialisation follows T5X (the original code's framework): embeddings N(0, 1),
fan-in scaled kernels, the 1/sqrt(d_head) attention scaling folded into the query projection's
initialisation, so attention itself is unscaled.

Attention (fused kernels, position bias) lives in :mod:`xfer.model.attention`.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from xfer.data.vocab import VOCAB_SIZE
from xfer.errors import XferError
from xfer.io import first_line
from xfer.model.attention import (
    PositionIndex,
    attention,
    default_attention_path,
    position_index,
)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the decoder. Defaults are the paper's model (about 65.8M parameters).

    ``rel_bias_slope``: how the relative-position bias tables start (:func:`init_position_bias`):
    0 is T5's uniform random init; a slope s > 0 makes every head favour nearby bytes from the
    first step. Without absolute positions the bias is the model's only way to find the
    previous byte, and learning it from a flat start keeps a tiny model on a unigram-level loss
    plateau for hundreds of steps.
    """

    name: str = "paper"
    vocab_size: int = VOCAB_SIZE
    d_model: int = 640
    n_layers: int = 10
    n_heads: int = 10
    d_head: int = 64
    d_ff: int = 2560
    rel_buckets: int = 32
    rel_max_distance: int = 128
    norm_eps: float = 1e-6
    rel_bias_slope: float = 0.0


    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ("name", "norm_eps", "rel_bias_slope") and (
                    not isinstance(value, int) or value < 1):
                raise XferError(f"model config {self.name!r}: {f.name} must be a positive "
                                f"integer, got {value!r}")
        if self.rel_buckets < 2:
            raise XferError(f"model config {self.name!r}: rel_buckets must be at least 2")
        if not (isinstance(self.rel_bias_slope, int | float) and 0 <= self.rel_bias_slope < 1e3):
            raise XferError(f"model config {self.name!r}: rel_bias_slope must be a number >= 0, "
                            f"got {self.rel_bias_slope!r}")

    def to_dict(self) -> dict:
        """Plain JSON-able dict (inverse: :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Rebuild a config from :meth:`to_dict`'s output; unknown keys are an XferError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise XferError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)


MODEL_CONFIGS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(name="tiny", d_model=128, n_layers=2, n_heads=2, d_head=64, d_ff=512),
    "small": ModelConfig(name="small", d_model=256, n_layers=4, n_heads=4, d_head=64, d_ff=1024),
    "paper": ModelConfig(name="paper"),
}


def get_model_config(name: str) -> ModelConfig:
    """The named config (``tiny``, ``small``, ``paper``); XferError for any other name."""
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        raise XferError(f"unknown model config {name!r}; choose one of "
                        f"{', '.join(MODEL_CONFIGS)}") from None


def init_position_bias(table: torch.Tensor, slope: float) -> None:
    """Fill one layer's bias table [buckets, heads] in place: T5's uniform init for ``slope``
    0, else bucket b of head h starts at -slope * b / 2^h (ALiBi-like: the first head looks
    mostly at the last few bytes, later heads further back; buckets grow with the distance)."""
    buckets, heads = table.shape
    if not slope:
        limit = math.sqrt(6.0 / (buckets + heads))
        nn.init.uniform_(table, -limit, limit)
        return
    slopes = slope * 2.0 ** -torch.arange(heads, dtype=table.dtype)
    table.copy_(-torch.arange(buckets, dtype=table.dtype)[:, None] * slopes[None, :])


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """T5's RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight (no centring, no bias).

    On CPU in fp32 it is :class:`RMSNormCPU` (one reduction forward, hand-written backward: about
    half the time of ``F.rms_norm``, which CPU runs as separate ops); elsewhere ``F.rms_norm``
    (fused on CUDA, and autocast-aware).
    """
    if x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32:
        return RMSNormCPU.apply(x, weight, eps)
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


class RMSNormCPU(torch.autograd.Function):
    """RMSNorm with its gradient written out: for y = x r w, r = (mean(x^2) + eps)^(-1/2),
    dx = r (g w - x r mean(g w x r)) and dw = sum over rows of g x r."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        dim = x.shape[-1]
        r = torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_().div_(dim).add_(eps)
        r.rsqrt_()
        ctx.save_for_backward(x, weight, r)
        return (x * r).mul_(weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, r = ctx.saved_tensors
        normed = x * r
        grad_weight = (grad * normed).sum(tuple(range(grad.dim() - 1)))
        grad_w = grad * weight
        dot = (grad_w * normed).mean(-1, keepdim=True)
        return grad_w.addcmul_(normed, dot, value=-1).mul_(r), grad_weight, None


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned scale and no bias or centring (T5)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


class Attention(nn.Module):
    """Multi-head self-attention; q, k, v in one fused projection, no biases."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        inner = cfg.n_heads * cfg.d_head
        self.qkv = nn.Linear(cfg.d_model, 3 * inner, bias=False)
        self.out = nn.Linear(inner, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, table: torch.Tensor, index: PositionIndex,
                path: str = "auto") -> torch.Tensor:
        batch, length, _ = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.n_heads, self.d_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, T, Dh]
        y = attention(q, k, v, table, index, path)
        return self.out(y.transpose(1, 2).reshape(batch, length, -1))


class GatedGeluMLP(nn.Module):
    """T5.1.1 MLP: (gelu(x W0) * (x W1)) Wo, with W0 and W1 in one fused projection."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.wi = nn.Linear(cfg.d_model, 2 * cfg.d_ff, bias=False)
        self.wo = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # two products on the halves of wi (contiguous outputs: no strided elementwise ops and
        # no concatenation of their gradients; the same function as one product then chunk)
        w_gate, w_linear = self.wi.weight.split(self.wo.in_features)
        gate = F.gelu(F.linear(x, w_gate), approximate="tanh")
        return self.wo(gate * F.linear(x, w_linear))


class Block(nn.Module):
    """Pre-norm decoder layer with its own relative-position bias table [buckets, heads]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = GatedGeluMLP(cfg)
        self.rel_bias = nn.Embedding(cfg.rel_buckets, cfg.n_heads)

    def forward(self, x: torch.Tensor, index: PositionIndex, path: str = "auto"
                ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), self.rel_bias.weight, index, path)
        return x + self.mlp(self.mlp_norm(x))


WEIGHTS_FILE = "model.safetensors"  # huggingface_hub's single-file name


class ByteLM(nn.Module, PyTorchModelHubMixin, library_name="xfer",
             tags=["byte-level", "xfer"]):
    """Decoder-only byte language model: ids [B, T] -> logits [B, T, vocab] (nats via softmax).

    ``save_pretrained(dir)`` writes ``model.safetensors`` and ``config.json`` (``{"cfg": model
    config}``); ``ByteLM.from_pretrained(dir)`` rebuilds the model from them (huggingface_hub's
    mixin). The output layer is the input embedding (tied), so the file holds one copy of it.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.final_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self._index_cache: dict[tuple[int, str], PositionIndex] = {}
        self.attention_path = default_attention_path()  # speed only; the same function
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """T5X initialisation (see the module docstring)."""
        cfg = self.cfg
        nn.init.normal_(self.embed.weight, std=1.0)
        inner = cfg.n_heads * cfg.d_head
        for block in self.blocks:
            qkv = block.attn.qkv.weight  # rows: q, k, v
            nn.init.normal_(qkv, std=cfg.d_model ** -0.5)
            qkv[:inner].mul_(cfg.d_head ** -0.5)
            nn.init.normal_(block.attn.out.weight, std=inner ** -0.5)
            nn.init.trunc_normal_(block.mlp.wi.weight, std=cfg.d_model ** -0.5,
                                  a=-2 * cfg.d_model ** -0.5, b=2 * cfg.d_model ** -0.5)
            nn.init.trunc_normal_(block.mlp.wo.weight, std=cfg.d_ff ** -0.5,
                                  a=-2 * cfg.d_ff ** -0.5, b=2 * cfg.d_ff ** -0.5)
            init_position_bias(block.rel_bias.weight, cfg.rel_bias_slope)
            block.attn_norm.weight.fill_(1.0)
            block.mlp_norm.weight.fill_(1.0)
        self.final_norm.weight.fill_(1.0)

    def num_parameters(self) -> int:
        """Number of trainable parameters (the tied embedding counted once)."""
        return sum(p.numel() for p in self.parameters())

    def position_index(self, length: int, device: torch.device) -> PositionIndex:
        """Bucket index for sequences of ``length`` bytes, shared by all layers (cached)."""
        key = (length, str(device))
        if key not in self._index_cache:
            self._index_cache = {key: position_index(length, self.cfg.rel_buckets,
                                                     self.cfg.rel_max_distance, device)}
        return self._index_cache[key]

    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """Final RMS-normed hidden states [B, T, d_model] of ids [B, T]."""
        if ids.dim() != 2:
            raise XferError(f"ByteLM expects ids of shape [batch, length], got {tuple(ids.shape)}")
        index = self.position_index(ids.shape[1], ids.device)
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, index, self.attention_path)
        return self.final_norm(x)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, vocab]: tied embeddings, scaled by 1/sqrt(d_model)."""
        h = self.hidden_states(ids)
        return F.linear(h, self.embed.weight) * self.cfg.d_model ** -0.5

    @classmethod
    def _from_pretrained(cls, *, model_id: str, cfg: ModelConfig | dict | None = None,
                         map_location: str = "cpu", strict: bool = True,
                         **hub_kwargs) -> ByteLM:
        """The mixin's loader, strict by default; a local folder without a model is an
        XferError (one line), and ``cfg`` arrives from config.json as a dict."""
        if cfg is None:
            raise XferError(f"{model_id}: config.json with the model config ('cfg') not found")
        if isinstance(cfg, dict):
            cfg = ModelConfig.from_dict(cfg)
        if not os.path.isdir(model_id):
            return super()._from_pretrained(model_id=model_id, cfg=cfg, map_location=map_location,
                                            strict=strict, **hub_kwargs)
        weights = Path(model_id) / WEIGHTS_FILE
        if not weights.is_file():
            raise XferError(f"{model_id}: no {WEIGHTS_FILE}")
        model = cls(cfg)
        try:
            cls._load_as_safetensor(model, str(weights), map_location, strict)
        except (RuntimeError, OSError, ValueError) as exc:
            raise XferError(f"{weights}: does not hold this model's weights "
                            f"({first_line(exc)})") from None
        return model
