"""The byte-level decoder: size, causality, position buckets, bad configs."""

from __future__ import annotations

import pytest
import torch

from xfer.errors import XferError
from xfer.model import MODEL_CONFIGS, ByteLM, ModelConfig, get_model_config, rms_norm
from xfer.model.attention import (
    BandBiasAttention,
    position_index,
    reference_attention,
    relative_position_bucket,
)


def test_paper_config_has_65_8m_parameters() -> None:
    with torch.device("meta"):
        model = ByteLM(MODEL_CONFIGS["paper"])
    assert abs(model.num_parameters() - 65.8e6) / 65.8e6 < 0.01
    assert model.num_parameters() == 65_718_400  # 10 x 6,555,200 + 259 x 640 + 640


def test_configs_come_from_one_dataclass() -> None:
    assert set(MODEL_CONFIGS) == {"tiny", "small", "paper"}
    assert all(isinstance(c, ModelConfig) for c in MODEL_CONFIGS.values())
    assert ModelConfig.from_dict(MODEL_CONFIGS["small"].to_dict()) == MODEL_CONFIGS["small"]


def test_causal_buckets_match_hand_computed_values() -> None:
    # distance q - k: exact below 16, then 16 + floor(16 * ln(n/16) / ln(8)), capped at 31
    distances = [0, 1, 15, 16, 20, 32, 64, 100, 127, 128, 500]
    expected = [0, 1, 15, 16, 17, 21, 26, 30, 31, 31, 31]
    query = torch.tensor([600])
    keys = torch.tensor([600 - d for d in distances])
    assert relative_position_bucket(query, keys, 32, 128)[0].tolist() == expected
    # future keys (negative distance) all share bucket 0; they are masked anyway
    assert relative_position_bucket(torch.tensor([0]), torch.tensor([1, 5, 300]), 32, 128
                                    ).tolist() == [[0, 0, 0]]


def test_changing_a_later_byte_never_changes_earlier_logits() -> None:
    torch.manual_seed(0)
    model = ByteLM(MODEL_CONFIGS["tiny"]).eval()
    ids = torch.randint(3, 259, (2, 200))
    changed = ids.clone()
    changed[:, 137] = (changed[:, 137] + 1 - 3) % 256 + 3
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert a.shape == (2, 200, 259)
    assert torch.equal(a[:, :137], b[:, :137])
    assert not torch.allclose(a[:, 137:], b[:, 137:])


def test_bias_tables_are_used_and_learn() -> None:
    torch.manual_seed(0)
    model = ByteLM(MODEL_CONFIGS["tiny"])
    model(torch.randint(3, 259, (1, 40))).sum().backward()
    for block in model.blocks:
        assert block.rel_bias.weight.grad.abs().sum() > 0
    hidden = model.hidden_states(torch.randint(3, 259, (1, 8)))
    assert hidden.shape == (1, 8, MODEL_CONFIGS["tiny"].d_model)


def test_rel_bias_slope_starts_every_head_on_nearby_bytes() -> None:
    """Slope s: bucket b of head h starts at -s*b/2^h, so at step 0 each head's attention
    weight falls with the distance (the first head's most steeply); slope 0 keeps T5's init."""
    cfg = ModelConfig(name="t", d_model=32, n_layers=1, n_heads=2, d_head=16, d_ff=64,
                      rel_bias_slope=1.0)
    table = ByteLM(cfg).blocks[0].rel_bias.weight.detach()
    assert table[:3].tolist() == [[0.0, 0.0], [-1.0, -0.5], [-2.0, -1.0]]
    flat = ByteLM(ModelConfig(**{**cfg.to_dict(), "rel_bias_slope": 0.0}))
    weights = flat.blocks[0].rel_bias.weight.detach()
    assert weights.abs().max() <= (6 / (cfg.rel_buckets + cfg.n_heads)) ** 0.5
    assert len(set(weights[:, 0].tolist())) == cfg.rel_buckets  # random, not a ramp
    with pytest.raises(XferError, match="rel_bias_slope must be a number >= 0"):
        ModelConfig(rel_bias_slope=-1)


def test_bad_configs_are_one_line_errors() -> None:
    with pytest.raises(XferError, match="unknown model config"):
        get_model_config("huge")
    with pytest.raises(XferError, match="d_model"):
        ModelConfig(d_model=0)
    with pytest.raises(XferError, match="unknown model config keys"):
        ModelConfig.from_dict({"width": 3})
    with pytest.raises(XferError, match="shape"):
        ByteLM(MODEL_CONFIGS["tiny"])(torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize("length", [1, 40, 130, 300, 1024])
def test_fused_cpu_attention_matches_reference_sdpa_path(length: int) -> None:
    # the fused path (flash kernel + band recompute of the bias gradient) against
    # scaled_dot_product_attention with bias + causal mask: outputs and every gradient
    cfg = ModelConfig(name="t", d_model=48, n_layers=2, n_heads=3, d_head=16, d_ff=64)
    torch.manual_seed(0)
    model = ByteLM(cfg)
    with torch.no_grad():  # larger bias tables so the bias matters for the softmax
        for block in model.blocks:
            block.rel_bias.weight.normal_(std=2.0)
    ids = torch.randint(3, 259, (3, length))
    results = []
    for path in ("fused", "reference"):
        model.attention_path = path
        model.zero_grad()
        logits = model(ids)
        (logits.square().mean() + logits[:, -1].sum()).backward()
        results.append((logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (fused_out, fused_grads), (ref_out, ref_grads) = results
    torch.testing.assert_close(fused_out, ref_out, rtol=1e-5, atol=1e-5)
    for name, ref in ref_grads.items():
        scale = ref.abs().max().clamp(min=1e-3)
        # fp32: at T = 1024 the far bucket's gradient sums 1.5M scores in the reference
        torch.testing.assert_close(fused_grads[name] / scale, ref / scale, rtol=0,
                                   atol=2e-5 if length < 1024 else 1e-4, msg=name)
    assert ref_grads["blocks.0.rel_bias.weight"].abs().sum() > 0 or length == 1


def test_band_bias_gradient_is_exact_in_float64_at_length_1024() -> None:
    # the band recompute (blocks of 64 queries, strided band view, far bucket = minus the
    # band's sum) against autograd through SDPA with the full [T, T] bias
    torch.manual_seed(0)
    index = position_index(1024, 32, 128, torch.device("cpu"))
    q, k, v = (torch.randn(2, 3, 1024, 8, dtype=torch.float64, requires_grad=True)
               for _ in range(3))
    table = torch.randn(32, 3, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(2, 3, 1024, 8, dtype=torch.float64)
    fused, ref = (torch.autograd.grad(f(q, k, v, table, index), (q, k, v, table), grad_out)
                  for f in (BandBiasAttention.apply, reference_attention))
    for got, want in zip(fused, ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_position_index_band_and_far_bucket() -> None:
    index = position_index(1024, 32, 128, torch.device("cpu"))
    # distances 0..112 have buckets 0..30; 113 and beyond all share bucket 31
    assert (index.band, index.far_bucket) == (113, 31)
    distances = torch.arange(1024)
    expected = relative_position_bucket(torch.tensor([1023]), 1023 - distances, 32, 128)[0]
    assert torch.equal(index.by_distance, expected)


def test_cpu_rms_norm_matches_torch_values_and_gradients() -> None:
    # the hand-written CPU backward against autograd through F.rms_norm, in float32
    torch.manual_seed(0)
    x = (torch.randn(3, 5, 40) * 3).requires_grad_()
    weight = torch.randn(40).requires_grad_()
    grad = torch.randn(3, 5, 40)
    ours = rms_norm(x, weight, 1e-6)
    ours_grads = torch.autograd.grad(ours, (x, weight), grad)
    ref = torch.nn.functional.rms_norm(x, (40,), weight, 1e-6)
    ref_grads = torch.autograd.grad(ref, (x, weight), grad)
    torch.testing.assert_close(ours, ref)
    for got, want in zip(ours_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
