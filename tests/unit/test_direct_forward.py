"""The direct GPT-2 forward pass (core.models.direct_forward) against transformers' own forward.

HookedLM runs the direct loop for GPT-2 models. It must compute exactly what transformers'
GPT2LMHeadModel.forward computes through the same hook points: the same logits and activations to the
last bit, the same effect of every write, the same stop, the same gradients and the same dropout.
Each test runs one thing on both paths (`on_transformers` switches the direct loop off) and compares.
The hook-point oracle tests (test_models_oracle.py) check the direct path against transformers'
eager attention too, since they go through HookedLM.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.lora import adapted_copy
from core.models import act_name, direct_forward
from core.models.loading import wrap
from tests.tiny_models import ARCHS


@contextmanager
def on_transformers():
    """Run HookedLM's forward passes through transformers' forward instead of the direct loop."""
    before = direct_forward.ENABLED
    direct_forward.ENABLED = False
    try:
        yield
    finally:
        direct_forward.ENABLED = before


@pytest.fixture
def calls(monkeypatch):
    """How many forward passes took the direct loop (so a comparison cannot pass vacuously)."""
    count = {"n": 0}
    inner = direct_forward.DirectLoop.logits

    def counted(*args, **kwargs):
        count["n"] += 1
        return inner(*args, **kwargs)

    monkeypatch.setattr(direct_forward.DirectLoop, "logits", counted)
    return count


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(3, 30, (2, 20), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("arch", ARCHS)
def test_only_plain_gpt2_models_take_the_direct_loop(tiny_lm, arch):
    assert direct_forward.supports(tiny_lm(arch).model) == (arch == "gpt2")


def test_cross_attention_gpt2_is_left_to_transformers():
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=16, vocab_size=32,
                        add_cross_attention=True)
    assert not direct_forward.supports(GPT2LMHeadModel(config))


def test_logits_and_every_activation_are_bit_identical(tiny_lm, tokens, calls):
    lm = tiny_lm("gpt2")
    logits, cache = lm.run_with_cache(tokens)
    assert calls["n"] == 1
    with on_transformers():
        ref_logits, ref_cache = lm.run_with_cache(tokens)
    assert calls["n"] == 1  # switched off: transformers' forward ran
    assert torch.equal(logits, ref_logits)
    assert list(cache) == list(ref_cache) and len(cache) == len(lm.hook_names())  # same points, same order
    for name in ref_cache:
        assert torch.equal(cache[name], ref_cache[name]), name


def _writes(lm):
    """A write at every kind of hook point: shifts, scales, a head switched off."""
    d = lm.cfg.d_model

    def head_off(act, hook):  # pattern [batch, head, q, k]: head 1 attends nowhere
        act = act.clone()
        act[:, 1] = 0
        return act

    return [
        (act_name("embed"), lambda a, h: a * 0.5),
        (act_name("resid_pre", 0), lambda a, h: a + torch.linspace(-1, 1, d)),
        (act_name("q", 0), lambda a, h: a * 2),
        (act_name("pattern", 1), head_off),
        (act_name("z", 1), lambda a, h: a - 0.1),
        (act_name("attn_out", 0), lambda a, h: a * 0.7),
        (act_name("pre", 1), lambda a, h: a + 0.3),
        (act_name("post", 0), lambda a, h: a * 0),
        (act_name("mlp_out", 1), lambda a, h: a * 1.5),
        (act_name("resid_post", 0), lambda a, h: a + 1),
    ]


def test_writes_change_the_output_identically(tiny_lm, tokens, calls):
    lm = tiny_lm("gpt2")
    with lm.hooks(_writes(lm)):
        logits = lm(tokens)
    with on_transformers(), lm.hooks(_writes(lm)):
        ref = lm(tokens)
    assert calls["n"] == 1
    assert not torch.allclose(logits, lm(tokens), atol=1e-3)  # the writes did something
    assert torch.equal(logits, ref)


def _zero_from_position_3(act, hook):
    act[:, 3:] = 0  # in place, returning nothing (TransformerLens style)


@pytest.mark.parametrize("write", [lambda a, h: a * 0.5 + 0.25, _zero_from_position_3],
                         ids=["returned", "in place"])
@pytest.mark.parametrize("inference_mode", [False, True])
def test_a_resid_mid_write_matches_to_rounding(tiny_lm, tokens, write, inference_mode):
    # transformers' path can only change resid_mid through attn_out ((new - pre) + pre), so the two
    # agree to float rounding, not to the bit
    lm = tiny_lm("gpt2")
    hooks = [(act_name("resid_mid", 0), write)]
    with torch.inference_mode(inference_mode):
        with lm.hooks(hooks):
            logits = lm(tokens)
        with on_transformers(), lm.hooks(hooks):
            ref = lm(tokens)
        assert not torch.allclose(logits, lm(tokens), atol=1e-3)
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_reading_resid_mid_changes_nothing(tiny_lm, tokens, arch):
    lm = tiny_lm(arch)
    if act_name("resid_mid", 0) not in lm.hook_names():
        pytest.skip("parallel attention and MLP: no resid_mid")
    seen = []
    with lm.hooks([(act_name("resid_mid", 0), lambda a, h: seen.append(a.sum()))]):
        logits = lm(tokens)
    assert seen and torch.equal(logits, lm(tokens))


def test_a_stop_before_a_layer_keeps_the_same_activations(tiny_lm, tokens, calls):
    lm = tiny_lm("gpt2")
    logits, cache = lm.run_with_cache(tokens, stop_at_layer=1)
    with on_transformers():
        ref_logits, ref_cache = lm.run_with_cache(tokens, stop_at_layer=1)
    assert calls["n"] == 1 and logits is None and ref_logits is None
    assert list(cache) == list(ref_cache)
    assert act_name("resid_post", 0) in cache and act_name("resid_pre", 1) not in cache
    for name in ref_cache:
        assert torch.equal(cache[name], ref_cache[name]), name


def test_gradients_of_every_weight_match(tiny_lm, tokens, calls):
    copy = tiny_lm("gpt2").copy(trainable=True)
    grads = []
    for direct in (True, False):
        copy.model.zero_grad(set_to_none=True)
        if direct:
            copy.loss(tokens, grad=True).backward()
        else:
            with on_transformers():
                copy.loss(tokens, grad=True).backward()
        grads.append({n: p.grad.clone() for n, p in copy.model.named_parameters()})
    assert calls["n"] == 1
    assert len(grads[0]) == len(grads[1]) > 10
    for name, grad in grads[1].items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grads[0][name], grad, atol=1e-6, rtol=1e-5)


def test_a_lora_copy_trains_through_the_direct_loop(tiny_lm, tokens, calls):
    tuned, peft_model = adapted_copy(tiny_lm("gpt2"), FinetuneConfig(rank=4))
    assert direct_forward.supports(tuned.model)
    tuned.model.train()
    with torch.no_grad():  # B = 0 at first: make the adapters do something
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    losses, grads = [], []
    for direct in (True, False):
        tuned.model.zero_grad(set_to_none=True)
        if direct:
            loss = tuned.loss(tokens, grad=True)
        else:
            with on_transformers():
                loss = tuned.loss(tokens, grad=True)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in peft_model.parameters() if p.requires_grad])
    assert calls["n"] == 1
    assert torch.equal(losses[0], losses[1])
    for direct_grad, ref_grad in zip(*grads, strict=True):
        torch.testing.assert_close(direct_grad, ref_grad, atol=1e-6, rtol=1e-5)


def test_dropout_draws_the_same_numbers(tiny_lm, tokens, calls):
    config = GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=32, vocab_size=64,
                        attn_pdrop=0.1, resid_pdrop=0.1, embd_pdrop=0.1)
    torch.manual_seed(0)
    lm = wrap(GPT2LMHeadModel(config), tiny_lm("gpt2").tokenizer)
    lm.model.train()
    outputs = []
    for direct in (True, False):
        torch.manual_seed(5)
        if direct:
            outputs.append(lm(tokens))
        else:
            with on_transformers():
                outputs.append(lm(tokens))
    assert calls["n"] == 1
    assert torch.equal(outputs[0], outputs[1])
    lm.model.eval()
    assert not torch.allclose(outputs[0], lm(tokens), atol=1e-3)  # dropout was on


def test_gradient_checkpointing_and_other_attention_are_left_to_transformers(tiny_lm, tokens):
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=32, vocab_size=64)
    checkpointed, other_attention = (wrap(GPT2LMHeadModel(config), tiny_lm("gpt2").tokenizer) for _ in "ab")
    assert checkpointed._direct.applies(tokens) and other_attention._direct.applies(tokens)
    checkpointed.model.gradient_checkpointing_enable()
    checkpointed.model.train()
    assert not checkpointed._direct.applies(tokens)
    other_attention.model.set_attn_implementation("eager")
    assert not other_attention._direct.applies(tokens)


@pytest.mark.parametrize("where", ["", "transformer", "transformer.wte", "transformer.h.0",
                                   "transformer.h.0.attn", "transformer.h.0.mlp.c_fc", "transformer.ln_f",
                                   "global"])
def test_another_hook_on_a_module_the_loop_bypasses_still_runs(tiny_lm, tokens, calls, where):
    # the loop applies HookedLM's hook points itself and skips the modules' hooks: a hook it does not
    # know about sends the pass through transformers' forward, where it fires
    lm = tiny_lm("gpt2")
    seen = []

    def hook(module, args, output):
        seen.append(module)

    if where == "global":
        handle = torch.nn.modules.module.register_module_forward_hook(hook)
    else:
        handle = lm.model.get_submodule(where).register_forward_hook(hook)
    try:
        lm(tokens)
    finally:
        handle.remove()
    assert calls["n"] == 0 and seen
    lm(tokens)
    assert calls["n"] == 1  # removed: the loop runs again


def test_a_model_that_comes_with_hooks_keeps_transformers_forward(tiny_lm, tokens):
    config = GPT2Config(n_layer=1, n_embd=16, n_head=2, n_positions=32, vocab_size=64)
    model = GPT2LMHeadModel(config)
    seen = []
    model.transformer.h[0].mlp.register_forward_hook(lambda module, args, output: seen.append(output))
    lm = wrap(model, tiny_lm("gpt2").tokenizer)
    assert lm._direct is None
    lm(tokens)
    assert len(seen) == 1
    assert wrap(GPT2LMHeadModel(config), tiny_lm("gpt2").tokenizer)._direct is not None


def test_a_replaced_forward_on_a_module_the_loop_does_not_call_is_honoured(tiny_lm, tokens, calls):
    config = GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=32, vocab_size=64)
    lm = wrap(GPT2LMHeadModel(config), tiny_lm("gpt2").tokenizer)
    mlp = lm.model.transformer.h[1].mlp
    plain = lm(tokens)
    assert calls["n"] == 1
    mlp.forward = lambda hidden_states: 0 * type(mlp).forward(mlp, hidden_states)
    assert not torch.allclose(lm(tokens), plain, atol=1e-4)  # the replacement ran
    assert calls["n"] == 1


def test_transformers_output_capturing_hooks_do_not_switch_the_loop_off(tiny_lm, tokens, calls):
    config = GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=32, vocab_size=64)
    lm = wrap(GPT2LMHeadModel(config), tiny_lm("gpt2").tokenizer)
    out = lm.model(input_ids=tokens, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == 3  # transformers installed its capturing hooks
    logits = lm(tokens)
    assert calls["n"] == 1
    with on_transformers():
        assert torch.equal(logits, lm(tokens))


def test_tokens_that_are_not_a_batch_of_rows_go_to_transformers(tiny_lm, calls):
    lm = tiny_lm("gpt2")
    tokens = torch.randint(3, 30, (1, 2, 6))
    assert lm(tokens).shape == (1, 2, 6, lm.cfg.d_vocab)
    assert calls["n"] == 0
