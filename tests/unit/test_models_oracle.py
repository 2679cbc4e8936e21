"""Oracle tests: our hook points against Hugging Face's own outputs, for every architecture family.

Each test builds a tiny random model, saves it to a folder and loads it through load_model(path),
the same path a hub id takes. The reference is the same checkpoint loaded by transformers with its
own eager attention.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from core.models import act_name, hooked_attention, load_model
from tests.tiny_models import ARCHS

ATOL = 1e-5
TEXT = "the cat sat on the mat . Mary gave a red dog to John and the dog ran home"


@pytest.fixture(scope="module", params=ARCHS)
def pair(request, tiny_model_dir):
    folder = tiny_model_dir(request.param)
    lm = load_model(str(folder))
    ref = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    return lm, ref


def _reference(lm, ref, tokens):
    """HF hidden states, attentions, and the input of the final norm (the last resid_post)."""
    captured = {}
    final_norm_name = {"gpt2": "transformer.ln_f", "gpt_neo": "transformer.ln_f",
                       "gpt_neox": "gpt_neox.final_layer_norm", "llama": "model.norm"}[lm.cfg.arch]
    handle = ref.get_submodule(final_norm_name).register_forward_pre_hook(
        lambda m, args: captured.setdefault("pre_norm", args[0]))
    with torch.no_grad():
        out = ref(input_ids=tokens, output_hidden_states=True, output_attentions=True)
    handle.remove()
    return out, captured["pre_norm"]


def test_logits_match_huggingface(pair):
    lm, ref = pair
    tokens = lm.to_tokens(TEXT)
    out, _ = _reference(lm, ref, tokens)
    torch.testing.assert_close(lm(tokens), out.logits, atol=ATOL, rtol=0)


def test_resid_post_and_patterns_match_huggingface(pair):
    lm, ref = pair
    tokens = lm.to_tokens(TEXT)
    out, pre_norm = _reference(lm, ref, tokens)
    _, cache = lm.run_with_cache(tokens)
    n = lm.cfg.n_layers
    for layer in range(n):
        expected = out.hidden_states[layer + 1] if layer < n - 1 else pre_norm
        torch.testing.assert_close(cache[act_name("resid_post", layer)], expected, atol=ATOL, rtol=0)
        torch.testing.assert_close(cache[act_name("pattern", layer)], out.attentions[layer],
                                   atol=ATOL, rtol=0)
    torch.testing.assert_close(cache[act_name("resid_pre", 0)], out.hidden_states[0], atol=ATOL, rtol=0)


def test_residual_stream_decomposes_into_attention_and_mlp(pair):
    lm, _ = pair
    _, cache = lm.run_with_cache(lm.to_tokens(TEXT))
    for layer in range(lm.cfg.n_layers):
        pre, post = cache[act_name("resid_pre", layer)], cache[act_name("resid_post", layer)]
        attn, mlp = cache[act_name("attn_out", layer)], cache[act_name("mlp_out", layer)]
        torch.testing.assert_close(post, pre + attn + mlp, atol=ATOL, rtol=0)
        if lm.cfg.has_resid_mid:
            torch.testing.assert_close(cache[act_name("resid_mid", layer)], pre + attn, atol=ATOL, rtol=0)
        else:
            assert act_name("resid_mid", layer) not in cache


def test_z_through_W_O_gives_attention_output(pair):
    lm, _ = pair
    _, cache = lm.run_with_cache(lm.to_tokens(TEXT))
    for layer in range(lm.cfg.n_layers):
        w = lm.attention_weights(layer)
        z = cache[act_name("z", layer)]  # [batch, pos, head, d_head]
        out = torch.einsum("bphd,hdm->bpm", z, w.W_O)
        if w.b_O is not None:
            out = out + w.b_O
        torch.testing.assert_close(out, cache[act_name("attn_out", layer)], atol=ATOL, rtol=0)


def test_v_is_the_normed_residual_through_W_V(pair):
    lm, _ = pair
    _, cache = lm.run_with_cache(lm.to_tokens(TEXT))
    for layer in range(lm.cfg.n_layers):
        w = lm.attention_weights(layer)
        normed = lm.adapter.block_modules(layer).ln1(cache[act_name("resid_pre", layer)])
        v = torch.einsum("bpm,hmd->bphd", normed, w.W_V)
        if w.b_V is not None:
            v = v + w.b_V
        torch.testing.assert_close(v, cache[act_name("v", layer)], atol=ATOL, rtol=0)


def test_pattern_rows_are_causal_distributions(pair):
    lm, _ = pair
    _, cache = lm.run_with_cache(lm.to_tokens(TEXT))
    pattern = cache[act_name("pattern", 0)][0]  # [head, q, k]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(pattern.shape[:2]), atol=ATOL, rtol=0)
    assert torch.triu(pattern, diagonal=1).abs().max() == 0


def test_writing_activations_back_unchanged_leaves_logits_unchanged(pair):
    lm, _ = pair
    tokens = lm.to_tokens(TEXT)
    clean = lm(tokens)
    identity = [(name, lambda act, hook: act.clone()) for name in lm.hook_names()]
    with lm.hooks(identity):
        hooked = lm(tokens)
    torch.testing.assert_close(hooked, clean, atol=ATOL, rtol=0)


@pytest.mark.parametrize("site", ["resid_pre", "resid_mid", "attn_out", "z", "pattern", "post",
                                  "mlp_out", "q", "v"])
def test_zeroing_an_activation_changes_the_logits(pair, site):
    lm, _ = pair
    if site == "resid_mid" and not lm.cfg.has_resid_mid:
        pytest.skip("parallel attention/MLP blocks have no resid_mid")
    tokens = lm.to_tokens(TEXT)
    clean = lm(tokens)
    with lm.hooks([(act_name(site, 0), lambda act, hook: torch.zeros_like(act))]):
        zeroed = lm(tokens)
    assert (zeroed - clean).abs().max() > 1e-3


def test_writing_resid_mid_is_exactly_seen_downstream(pair):
    lm, _ = pair
    if not lm.cfg.has_resid_mid:
        pytest.skip("no resid_mid")
    tokens = lm.to_tokens(TEXT)
    target = torch.randn(1, tokens.shape[1], lm.cfg.d_model)
    name = act_name("resid_mid", 0)
    with lm.hooks([(name, lambda act, hook: target)]):
        _, cache = lm.run_with_cache(tokens, [name, act_name("mlp_out", 0), act_name("resid_post", 0)])
    torch.testing.assert_close(cache[name], target, atol=ATOL, rtol=0)
    torch.testing.assert_close(cache[act_name("resid_post", 0)], target + cache[act_name("mlp_out", 0)],
                               atol=ATOL, rtol=0)


def test_the_fused_and_the_step_by_step_attention_agree(pair, monkeypatch):
    """Hook points idle -> the fused kernel; any attention hook -> step by step. Same numbers."""
    lm, ref = pair
    tokens = lm.to_tokens(TEXT)
    fused = lm(tokens)
    logits, _ = lm.run_with_cache(tokens, names=[act_name("pattern", 0)])  # layer 0 step by step
    monkeypatch.setattr(hooked_attention, "FUSED", False)
    step_by_step = lm(tokens)
    out, _ = _reference(lm, ref, tokens)
    for ours in (fused, logits, step_by_step):
        torch.testing.assert_close(ours, out.logits, atol=ATOL, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
def test_a_kv_cache_in_chunks_matches_one_full_pass(pair, fused, monkeypatch):
    """Several new positions after a KV cache: the causal mask is aligned bottom-right."""
    from transformers import DynamicCache

    lm, _ = pair
    monkeypatch.setattr(hooked_attention, "FUSED", fused)
    tokens = lm.to_tokens(TEXT)
    cache = DynamicCache(config=lm.model.config)
    with torch.no_grad():
        first = lm.model(input_ids=tokens[:, :9], past_key_values=cache, use_cache=True).logits
        rest = lm.model(input_ids=tokens[:, 9:], past_key_values=cache, use_cache=True,
                        position_ids=torch.arange(9, tokens.shape[1])[None]).logits
    torch.testing.assert_close(torch.cat([first, rest], dim=1), lm(tokens), atol=ATOL, rtol=0)


@pytest.mark.parametrize("fused", [True, False])
def test_a_padding_mask_is_applied_like_huggingface(pair, fused, monkeypatch):
    """A left-padded row: its real tokens must not attend to the padding before them."""
    lm, ref = pair
    monkeypatch.setattr(hooked_attention, "FUSED", fused)
    full = lm.to_tokens(TEXT)
    short = lm.to_tokens("the cat sat on the mat")
    n_pad = full.shape[1] - short.shape[1]
    tokens = torch.cat([full, torch.cat([torch.full((1, n_pad), 2), short], dim=1)])  # [2, pos]
    mask = torch.ones_like(tokens)
    mask[1, :n_pad] = 0
    with torch.no_grad():
        ours = lm.model(input_ids=tokens, attention_mask=mask).logits
        theirs = ref(input_ids=tokens, attention_mask=mask).logits
        unmasked = lm.model(input_ids=tokens).logits
    real = mask.bool()
    torch.testing.assert_close(ours[real], theirs[real], atol=ATOL, rtol=0)
    assert (unmasked[1, n_pad:] - ours[1, n_pad:]).abs().max() > 1e-4  # the mask did matter
