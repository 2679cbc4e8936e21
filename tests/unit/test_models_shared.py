"""The models layer's shared pieces: one loss, one parameter counter, one meaning of "layer", copies
with their own spec, and a dtype chosen by measuring."""

from __future__ import annotations

import pytest
import torch

from core.models import load_model
from core.models.dtype import DtypeChoice, autocast_bf16, cpu_capabilities, fastest_matmul_dtype
from core.models.hook_names import (
    EMBEDDINGS,
    hook_label,
    stream_hook,
    stream_label,
    stream_layer_of,
    stream_layers,
)
from core.models.loss import next_token_loss
from core.models.params import count_params


@pytest.fixture(scope="module")
def lm():
    return load_model()


def test_loss_equals_hugging_faces_own_loss(lm):
    tokens = lm.to_tokens(["Mary gave a ball to John .", "Tom saw a red cat"])
    hf = lm.model(input_ids=tokens, labels=tokens, attention_mask=torch.ones_like(tokens)).loss
    assert torch.allclose(lm.loss(tokens), hf, atol=1e-5)
    per = lm.loss(tokens, per_token=True)
    assert per.shape == (2, tokens.shape[1] - 1) and torch.allclose(per.mean(), hf, atol=1e-5)


def test_loss_mask_leaves_predictions_out():
    logits = torch.randn(1, 4, 7)
    tokens = torch.tensor([[1, 2, 3, 4]])
    per = next_token_loss(logits, tokens, per_token=True)  # [1, 3]
    mask = torch.tensor([[0, 0, 1, 1]])  # only the predictions of tokens 2 and 3 count
    assert torch.allclose(next_token_loss(logits, tokens, mask=mask), per[0, 1:].mean())


def test_the_mean_loss_and_its_gradient_leave_the_last_position_out():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, 11, generator=gen, requires_grad=True)
    tokens = torch.randint(11, (3, 6), generator=gen)
    mean, per = next_token_loss(logits, tokens), next_token_loss(logits, tokens, per_token=True)
    assert torch.allclose(mean, per.mean())  # the 15 predictions that have a next token, equally weighted
    by_mean, = torch.autograd.grad(mean, logits)
    by_per, = torch.autograd.grad(per.mean(), logits)
    assert torch.allclose(by_mean, by_per, atol=1e-8)
    assert by_mean[:, -1].abs().max() == 0 and by_mean[:, :-1].abs().min() > 0


def test_loss_follows_active_hooks(lm):
    tokens = lm.to_tokens("Mary gave a ball to John .")
    clean = lm.loss(tokens)
    with lm.hooks([(stream_hook(0), lambda act, hook: act * 0)]):
        assert lm.loss(tokens) > clean + 0.5


def test_count_params_counts_tied_weights_once(lm):
    assert count_params(lm.model) == lm.cfg.n_params
    distinct = {id(p): p for p in lm.model.parameters()}
    assert count_params(lm.model) == sum(p.numel() for p in distinct.values())
    assert count_params(lm.model, trainable_only=True) == 0  # the shared model is frozen


def test_a_copy_has_its_own_spec_and_weights(lm):
    c1, c2 = lm.copy(), lm.copy(trainable=True)
    assert len({lm.spec, c1.spec, c2.spec}) == 3 and c1.spec.startswith("bundled+copy#")
    assert lm.copy(spec="mine").spec == "mine"
    assert c2.W_E.data_ptr() != lm.W_E.data_ptr() and not lm.W_E.requires_grad


def test_one_meaning_of_layer():
    assert stream_layers(3) == [EMBEDDINGS, 0, 1, 2]
    assert stream_hook(EMBEDDINGS) == "blocks.0.hook_resid_pre"
    assert stream_hook(2) == "blocks.2.hook_resid_post"
    with pytest.raises(ValueError):
        stream_hook(-2)
    # resid_pre of layer L is the stream after layer L - 1: both spellings read as one point
    assert stream_layer_of("blocks.2.hook_resid_pre") == 1 == stream_layer_of("blocks.1.hook_resid_post")
    assert stream_layer_of("blocks.0.hook_resid_pre") == EMBEDDINGS
    assert stream_layer_of("blocks.1.hook_mlp_out") is None
    assert stream_label(EMBEDDINGS).startswith("embeddings") and stream_label(3) == "after layer 3"
    assert hook_label("blocks.2.hook_resid_pre") == "residual stream after layer 1"
    assert hook_label("blocks.1.attn.hook_pattern") == "attention pattern of layer 1"


def test_the_dtype_is_chosen_by_measurement():
    choice = fastest_matmul_dtype()
    assert choice.fp32_gflops > 0 and choice.bf16_gflops > 0
    assert choice.use_bf16 == (choice.bf16_gflops >= 1.15 * choice.fp32_gflops)
    assert set(cpu_capabilities()) == {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    assert "GFLOP/s" in choice.reason() and choice.cpu in choice.reason()
    assert autocast_bf16(False) is False and autocast_bf16(True) is True
    assert autocast_bf16(None) is choice.use_bf16


def test_the_capability_line_names_a_cap_on_onednn(monkeypatch):
    from core.models.dtype import ISA_CAP_VARIABLE, capability_summary

    monkeypatch.delenv(ISA_CAP_VARIABLE, raising=False)
    plain = capability_summary()
    assert "oneDNN" not in plain
    monkeypatch.setenv(ISA_CAP_VARIABLE, "AVX512_CORE_BF16")
    assert capability_summary() == f"{plain}; oneDNN capped at AVX512_CORE_BF16"
    monkeypatch.setenv(ISA_CAP_VARIABLE, "ALL")  # oneDNN's word for no cap
    assert capability_summary() == plain


def test_a_slow_bf16_cpu_picks_float32():
    slow = DtypeChoice(torch.float32, fp32_gflops=128, bf16_gflops=73, threads=1, cpu="AVX-512 BF16")
    assert not slow.use_bf16 and slow.speedup < 1 and "float32" in slow.reason()


def test_the_memory_budget_refuses_with_advice(monkeypatch):
    from core.models.budget import MemoryBudgetError, check_fits, session_budget_bytes

    monkeypatch.setenv("LAB_SESSION_MEMORY_MB", "100")
    assert session_budget_bytes() == 100_000_000
    check_fits(60e6, what="this SAE", lower="a smaller dictionary", held_bytes=30e6)
    with pytest.raises(MemoryBudgetError, match="a smaller dictionary") as err:
        check_fits(60e6, what="this SAE", lower="a smaller dictionary", held_bytes=50e6)
    assert "50 MB" in str(err.value) and "100 MB" in str(err.value)
    monkeypatch.setenv("LAB_SESSION_MEMORY_MB", "lots")
    assert session_budget_bytes() == 1_500_000_000
