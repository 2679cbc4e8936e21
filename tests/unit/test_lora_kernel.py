"""The fast LoRA layer (core.interp.finetune.lora_kernel) against PEFT's own forward and torch autograd.

Same outputs and same gradients for A and B (and for the layer's input), on GPT-2's Conv1D and on
nn.Linear, in float32 (to float rounding) and under bfloat16 autocast (to bfloat16 rounding); PEFT's
forward wherever the fast path does not apply; the hooked attention's float32 kernel while training
in bfloat16.
"""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora.layer import Linear as LoraLinear
from torch import nn
from transformers.pytorch_utils import Conv1D

from core.interp.finetune import lora_kernel
from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.lora import adapted_copy, peft_config
from core.interp.finetune.lora_kernel import LoraMatmul, _fast_path_applies, use_fast_lora
from core.models.hooked_attention import _fused

ARCHS = ("gpt2", "gpt_neo", "gpt_neox", "llama")


@pytest.fixture(scope="module")
def models(tiny_lm):
    return tiny_lm


def _fast_and_peft(lm, cfg):
    """(fast PeftModel from adapted_copy, plain PeftModel with PEFT's forward), same random A and B."""
    _, fast = adapted_copy(lm, cfg)
    plain = get_peft_model(lm.detached_model(), peft_config(lm, cfg))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in fast.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero: give it a value, as training would
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    plain.load_state_dict(fast.state_dict())
    return fast, plain


def _loss_and_grads(peft_model, tokens, bf16=False):
    peft_model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = peft_model(input_ids=tokens).logits.float()
    loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
    loss.backward()
    grads = {n: p.grad.clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    return logits.detach(), grads


@pytest.mark.parametrize("arch", ARCHS)
def test_every_lora_layer_takes_the_fast_path_and_matches_peft(models, arch):
    lm = models(arch)
    cfg = FinetuneConfig(rank=4, alpha=8.0)
    fast, plain = _fast_and_peft(lm, cfg)
    layers = [m for m in fast.modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer")]
    assert layers and all(_fast_path_applies(m, torch.zeros(1), (), {}) == "default" for m in layers)
    assert all("_forward" in m.forward.__qualname__ for m in layers)  # installed on every one
    tokens = torch.randint(lm.cfg.d_vocab, (2, 12), generator=torch.Generator().manual_seed(0))
    fast_logits, fast_grads = _loss_and_grads(fast, tokens)
    plain_logits, plain_grads = _loss_and_grads(plain, tokens)
    assert (fast_logits - plain_logits).abs().max() < 1e-4 * (1 + plain_logits.abs().max())
    assert fast_grads.keys() == plain_grads.keys() and len(fast_grads) == 2 * len(layers)
    for name, g in plain_grads.items():
        assert g.abs().max() > 0, name  # B != 0, so every A and B gets a gradient
        assert torch.allclose(fast_grads[name], g, rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_under_bfloat16_autocast_it_matches_peft_to_bfloat16_rounding(models, arch):
    lm = models(arch)
    fast, plain = _fast_and_peft(lm, FinetuneConfig(rank=4))
    tokens = torch.randint(lm.cfg.d_vocab, (2, 12), generator=torch.Generator().manual_seed(0))
    fast_logits, fast_grads = _loss_and_grads(fast, tokens, bf16=True)
    plain_logits, plain_grads = _loss_and_grads(plain, tokens, bf16=True)
    exact_logits, _ = _loss_and_grads(plain, tokens)
    # both round to bfloat16 (8 bits): each is within a few bfloat16 steps of float32, as close as PEFT is
    fast_error = (fast_logits - exact_logits).abs().max()
    peft_error = (plain_logits - exact_logits).abs().max()
    assert fast_error <= 2 * peft_error + 1e-3 * exact_logits.abs().max()
    for name, g in plain_grads.items():
        assert fast_grads[name].dtype == torch.float32  # gradients come back in the parameters' dtype
        cos = nn.functional.cosine_similarity(fast_grads[name].flatten(), g.flatten(), dim=0)
        assert cos > 0.98, (name, float(cos))


@pytest.mark.parametrize("rows", [True, False], ids=["rows_form", "columns_form"])
def test_the_gradients_are_autograds_in_double_precision(monkeypatch, rows):
    monkeypatch.setattr(lora_kernel, "rows_form", lambda dtype: rows)  # both forms of the rank-r products
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    W = torch.randn(6, 7, dtype=torch.float64, generator=gen)
    bias = torch.randn(7, dtype=torch.float64, generator=gen)
    A = torch.randn(3, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    B = torch.randn(7, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, A, B: LoraMatmul.apply(x, W, bias, A, B, 2.5, torch.float64),
                                    (x, A, B))
    by_hand = x @ W + bias + 2.5 * (x @ A.t()) @ B.t()
    assert torch.allclose(LoraMatmul.apply(x, W, bias, A, B, 2.5, torch.float64), by_hand)


def test_evaluation_without_gradients_uses_the_merged_weight_and_matches(models):
    lm = models("gpt2")
    fast, plain = _fast_and_peft(lm, FinetuneConfig(rank=2))
    tokens = torch.randint(lm.cfg.d_vocab, (3, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = fast(input_ids=tokens).logits, plain(input_ids=tokens).logits
    assert (a - b).abs().max() < 1e-4 * (1 + b.abs().max())


def test_switched_off_or_merged_adapters_go_through_peft(models):
    lm = models("gpt2")
    fast, _ = _fast_and_peft(lm, FinetuneConfig(rank=2))
    tokens = torch.randint(lm.cfg.d_vocab, (1, 8), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        base = lm.model(input_ids=tokens).logits
        with fast.disable_adapter():  # PEFT's switch: the base model's output, exactly
            off = fast(input_ids=tokens).logits
        adapted = fast(input_ids=tokens).logits
    assert torch.allclose(off, base, atol=1e-6)
    assert (adapted - base).abs().max() > 1e-3  # and on again afterwards
    layer = next(m for m in fast.modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer"))
    layer.merge()
    assert _fast_path_applies(layer, torch.zeros(1), (), {}) is None
    layer.unmerge()
    assert _fast_path_applies(layer, torch.zeros(1), (), {}) == "default"


def test_a_layer_with_dropout_keeps_peft_forward():
    base = nn.Sequential(nn.Linear(6, 5))
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["0"], lora_dropout=0.5))
    assert use_fast_lora(model) == 1
    layer = model.base_model.model[0]
    assert _fast_path_applies(layer, torch.zeros(1), (), {}) is None
    torch.manual_seed(0)
    model.train()
    x = torch.randn(4, 6)
    torch.manual_seed(5)
    a = model(x)
    torch.manual_seed(5)
    b = LoraLinear.forward(layer, x)
    assert torch.equal(a, b)


def test_conv1d_and_linear_read_the_same_weight_the_same_way():
    gen = torch.Generator().manual_seed(0)
    linear = nn.Linear(6, 4)
    conv = Conv1D(4, 6)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.t())
        conv.bias.copy_(linear.bias)
    outs = []
    for base in (linear, conv):
        model = get_peft_model(nn.Sequential(base), LoraConfig(r=2, target_modules=["0"],
                                                               fan_in_fan_out=isinstance(base, Conv1D)))
        with torch.no_grad():
            model.base_model.model[0].lora_B["default"].weight.copy_(torch.randn(4, 2, generator=gen))
            model.base_model.model[0].lora_A["default"].weight.copy_(torch.randn(2, 6, generator=gen))
        use_fast_lora(model)
        x = torch.randn(3, 6, generator=torch.Generator().manual_seed(9))
        outs.append(model(x))
        gen = torch.Generator().manual_seed(0)
    assert torch.allclose(outs[0], outs[1], atol=1e-6)


def test_training_attention_runs_in_float32_under_bfloat16_autocast():
    """The fused attention's bfloat16 backward is slow on CPUs, so a training pass computes it in
    float32 on the bfloat16 inputs: exactly float32 attention of the rounded q, k, v, rounded once."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 4, generator=gen).bfloat16().requires_grad_() for _ in range(3))
    module = nn.Module()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z, pattern = _fused(module, q, k, v, None, 0.5, 1)
    reference = nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True,
                                                           scale=0.5)
    assert pattern is None and z.dtype == torch.bfloat16
    assert torch.equal(z, reference.bfloat16().transpose(1, 2).contiguous())
    z.float().sum().backward()
    assert q.grad is not None and q.grad.dtype == torch.bfloat16 and q.grad.abs().sum() > 0


def test_a_frozen_adapter_passes_gradients_to_its_input_only():
    """After training the adapter is frozen; a gradient through the model (attribution) still reaches
    the input, exactly as through PEFT's layer, and A and B get none."""
    gen = torch.Generator().manual_seed(0)
    model = get_peft_model(nn.Sequential(nn.Linear(6, 5)), LoraConfig(r=2, target_modules=["0"]))
    layer = model.base_model.model[0]
    with torch.no_grad():
        layer.lora_B["default"].weight.copy_(torch.randn(5, 2, generator=gen))
    model.requires_grad_(False)
    x = torch.randn(3, 6, generator=gen, requires_grad=True)
    (LoraLinear.forward(layer, x) ** 2).sum().backward()
    expected, x.grad = x.grad.clone(), None
    use_fast_lora(model)
    (model(x) ** 2).sum().backward()
    assert torch.allclose(x.grad, expected, atol=1e-6)
    assert layer.lora_A["default"].weight.grad is None and layer.lora_B["default"].weight.grad is None
