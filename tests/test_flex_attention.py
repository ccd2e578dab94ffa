"""The FlexAttention path (CUDA's kernel for the T5-bias attention) computes the reference's
function, and on CPU the automatic choice is unchanged (studies stay bit-identical).

FlexAttention refuses gradients on CPU with a device check (torch 2.13: "does not support
backward on CPU") although its unfused math computes them; the ``cpu_backward`` fixture lifts
that check, so these tests differentiate the same ``score_mod`` and block mask that CUDA
compiles into its kernel. The compiled CUDA kernel itself is checked by bench/gpu_check.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.attention.flex_attention as torch_flex

import xfer.model.attention as attention_module
from xfer.errors import XferError
from xfer.model import ByteLM, ModelConfig, flex
from xfer.model.attention import kernel_of, position_index, reference_attention
from xfer.model.flex import (
    KERNEL_BLOCK,
    TABLE_GRADIENTS,
    causal_block_mask,
    flex_attention_biased,
)

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


@pytest.fixture
def cpu_backward(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let FlexAttention differentiate on CPU (its unfused math; see the module docstring)."""
    check = torch_flex._validate_device

    def allow_cpu(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> None:
        if query.device.type != "cpu":
            check(query, key, value)

    monkeypatch.setattr(torch_flex, "_validate_device", allow_cpu)


def _inputs(batch: int, heads: int, length: int, d_head: int, buckets: int,
            dtype: torch.dtype) -> list[torch.Tensor]:
    """q, k (scaled as the model's initialisation scales q), v, a bias table large enough to
    matter in the softmax, and an output gradient; float64, then cast to ``dtype``."""
    torch.manual_seed(length * 7 + heads)
    shape = (batch, heads, length, d_head)
    q, k, v, grad = (torch.randn(shape, dtype=torch.float64) for _ in range(4))
    table = torch.randn(buckets, heads, dtype=torch.float64) * 2
    return [x.to(dtype) for x in (q * d_head ** -0.5, k, v, table, grad)]


def _values_and_grads(fn, q, k, v, table, grad, index) -> list[torch.Tensor]:
    inputs = [x.clone().requires_grad_() for x in (q, k, v, table)]
    out = fn(*inputs, index)
    return [out.detach(), *torch.autograd.grad(out, inputs, grad)]


CASES = [  # batch, heads, length (bytes), d_head, buckets, max distance (bytes)
    (2, 3, 1, 16, 32, 128),
    (2, 3, 100, 16, 32, 128),
    (1, 2, KERNEL_BLOCK, 8, 8, 20),
    (2, 4, 200, 16, 32, 128),
    (1, 3, 300, 16, 16, 64),
    (1, 1, 2 * KERNEL_BLOCK + 1, 8, 32, 128),
]


@pytest.mark.parametrize("table_gradient", TABLE_GRADIENTS)
@pytest.mark.parametrize(("batch", "heads", "length", "d_head", "buckets", "distance"), CASES)
def test_flex_path_equals_reference_in_fp32(cpu_backward: None, batch: int, heads: int,
                                            length: int, d_head: int, buckets: int,
                                            distance: int, table_gradient: str) -> None:
    """Output and the q, k, v and bias-table gradients within 1e-5 of the reference (relative
    to the largest reference entry when that is above 1), lengths off the 128-byte block too;
    the table's gradient from FlexAttention's backward and from the band recompute."""
    q, k, v, table, grad = _inputs(batch, heads, length, d_head, buckets, torch.float32)
    index = position_index(length, buckets, distance, q.device)
    flex = _values_and_grads(
        lambda *a: flex_attention_biased(*a, compiled=False, table_gradient=table_gradient),
        q, k, v, table, grad, index)
    ref = _values_and_grads(reference_attention, q, k, v, table, grad, index)
    for name, got, want in zip(("out", "dq", "dk", "dv", "dtable"), flex, ref, strict=True):
        scale = max(1.0, want.abs().max().item())
        torch.testing.assert_close(got / scale, want / scale, rtol=0, atol=1e-5, msg=name)
    assert ref[4].abs().sum() > 0 or length == 1  # the table's gradient is not trivially zero


@pytest.mark.parametrize("table_gradient", TABLE_GRADIENTS)
@pytest.mark.parametrize("length", [130, 2 * KERNEL_BLOCK + 1])
def test_flex_path_equals_reference_in_fp64(cpu_backward: None, length: int,
                                            table_gradient: str) -> None:
    """In float64 the two paths agree to rounding: the same function, not a close one."""
    q, k, v, table, grad = _inputs(2, 2, length, 8, 32, torch.float64)
    index = position_index(length, 32, 128, q.device)
    flex = _values_and_grads(
        lambda *a: flex_attention_biased(*a, compiled=False, table_gradient=table_gradient),
        q, k, v, table, grad, index)
    ref = _values_and_grads(reference_attention, q, k, v, table, grad, index)
    for got, want in zip(flex, ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_compiled_kernel_is_compiled_once_for_every_layer(
        cpu_backward: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path an eager model takes on CUDA: ``flex_attention`` under ``torch.compile`` (here
    Dynamo + AOT autograd with eager kernels on CPU), called by each layer with its own table:
    one graph, no recompilation, and each layer's result equals the reference."""
    monkeypatch.setattr(flex, "COMPILED_DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(flex, "_compiled", [torch.compile(torch_flex.flex_attention,
                                                          backend="aot_eager", dynamic=False)])
    torch._dynamo.utils.counters.clear()
    with torch._dynamo.config.patch(error_on_recompile=True):
        for layer in range(3):
            q, k, v, table, grad = _inputs(2, 2, 150, 8, 32, torch.float32)
            table = table + layer
            index = position_index(150, 32, 128, q.device)
            got = _values_and_grads(flex_attention_biased, q, k, v, table, grad, index)
            want = _values_and_grads(reference_attention, q, k, v, table, grad, index)
            for a, b in zip(got, want, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1


def test_block_mask_is_causal_and_cached() -> None:
    length = KERNEL_BLOCK + 5
    mask = causal_block_mask(length, torch.device("cpu"))
    assert causal_block_mask(length, torch.device("cpu")) is mask
    dense = torch_flex.create_mask(lambda b, h, q, k: q >= k, None, None, length, length, "cpu")
    assert mask.shape[-2:] == (length, length)
    assert torch.equal(mask.to_dense().bool()[0, 0], torch.ones(2, 2).tril().bool())
    assert dense[0, 0].sum() == length * (length + 1) // 2


def test_kernel_choice_per_device_and_path() -> None:
    cuda = [kernel_of("cuda", True, training, 1024, 113, path)
            for training in (True, False) for path in ("auto", "fused", "reference")]
    assert cuda == ["flex", "flex", "reference", "reference", "flex", "reference"]
    # CPU: exactly the rule before the FlexAttention path (band only for fp32 and T >= 4 band)
    assert [kernel_of("cpu", True, True, length, 113) for length in (451, 452)] == [
        "reference", "band"]
    assert kernel_of("cpu", False, True, 1024, 113, "fused") == "reference"
    assert kernel_of("cpu", True, False, 64, 113, "fused") == "band"
    assert {kernel_of("xla", True, t, 1024, 113, p) for t in (True, False)
            for p in ("auto", "fused")} == {"reference"}
    with pytest.raises(XferError, match="attention path must be one of"):
        kernel_of("cpu", True, True, 10, 3, "flash")
    with pytest.raises(ValueError, match="table_gradient must be one of"):
        flex_attention_biased(*_inputs(1, 1, 4, 2, 8, torch.float32)[:4],
                              position_index(4, 8, 16, torch.device("cpu")), table_gradient="x")


TINY = ModelConfig(name="t", d_model=32, n_layers=2, n_heads=2, d_head=16, d_ff=64,
                   rel_buckets=8, rel_max_distance=16)


def test_attention_path_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XFER_ATTENTION", "reference")
    assert ByteLM(TINY).attention_path == "reference"
    monkeypatch.delenv("XFER_ATTENTION")
    assert ByteLM(TINY).attention_path == "auto"
    monkeypatch.setenv("XFER_ATTENTION", "flash")
    with pytest.raises(XferError, match="attention path must be one of auto, fused, reference"):
        ByteLM(TINY)


def _one_step(run: torch.nn.Module, model: ByteLM, ids: torch.Tensor
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The next-byte loss of ``run`` (the model, or its compiled form) on ``ids`` and the
    model's gradients."""
    loss = torch.nn.functional.cross_entropy(run(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _train(model: ByteLM, ids: torch.Tensor, steps: int = 3
           ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """``steps`` AdamW steps on ``ids``: the losses and the last step's gradients."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss, grads = _one_step(model, model, ids)
        opt.step()
        losses.append(loss)
    return losses, grads


@pytest.mark.parametrize(("length", "expected"), [(40, "reference"), (200, "band")])
def test_cpu_training_is_bitwise_what_the_cpu_rule_gave(
        monkeypatch: pytest.MonkeyPatch, length: int, expected: str) -> None:
    """On CPU the automatic path never reaches FlexAttention, and a few training steps give
    bitwise the losses and gradients of the kernel the CPU rule picked before it existed."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("FlexAttention used on CPU")

    monkeypatch.setattr(attention_module, "flex_attention_biased", refuse)
    band = position_index(length, TINY.rel_buckets, TINY.rel_max_distance, torch.device("cpu"))
    assert kernel_of("cpu", True, True, length, band.band) == expected
    ids = torch.randint(3, 259, (2, length + 1), generator=torch.Generator().manual_seed(1))
    runs = []
    for path in ("auto", "fused" if expected == "band" else "reference"):
        torch.manual_seed(0)
        model = ByteLM(TINY)
        model.attention_path = path
        runs.append(_train(model, ids))
    (auto_losses, auto_grads), (rule_losses, rule_grads) = runs
    assert all(torch.equal(a, b) for a, b in zip(auto_losses, rule_losses, strict=True))
    assert all(torch.equal(auto_grads[n], rule_grads[n]) for n in rule_grads)
    assert auto_losses[-1] < auto_losses[0]


def test_compiled_model_on_flex_path_trains_as_the_reference(
        cpu_backward: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole model under torch.compile (Dynamo's graph capture; the CPU eager backend)
    with FlexAttention inside the graph: the loss and every parameter's gradient match the
    reference path (1e-5 of each gradient's largest entry)."""
    torch.manual_seed(0)
    model = ByteLM(TINY)
    with torch.no_grad():
        for block in model.blocks:
            block.rel_bias.weight.normal_(std=2.0)
    ids = torch.randint(3, 259, (2, KERNEL_BLOCK + 23), generator=torch.Generator().manual_seed(2))
    model.attention_path = "reference"
    ref_loss, ref_grads = _one_step(model, model, ids)
    monkeypatch.setattr(attention_module, "kernel_of", lambda *args: "flex")
    model.zero_grad()
    flex_loss, flex_grads = _one_step(torch.compile(model, backend="eager"), model, ids)
    torch.testing.assert_close(flex_loss, ref_loss, rtol=1e-6, atol=0)
    for name, want in ref_grads.items():
        scale = want.abs().max().clamp(min=1e-3)
        torch.testing.assert_close(flex_grads[name] / scale, want / scale, rtol=0, atol=1e-5,
                                   msg=name)
    assert ref_grads["blocks.1.rel_bias.weight"].abs().sum() > 0
