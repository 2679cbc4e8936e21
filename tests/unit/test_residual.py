"""Residual stream: the logit lens is the model's output at the last layer, direct logit attribution
sums exactly, the stream is the sum of its writes, and the tuned lens beats the logit lens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.residual import anatomy as A
from core.interp.residual import dla as D
from core.interp.residual import logit_lens as L
from core.interp.residual import tasks as T
from core.interp.residual import tuned_lens as TL
from core.interp.residual.readout import final_norm, readout
from core.models import act_name, load_model
from core.models.hook_names import stream_hook
from core.world.corpus import build_corpus

ARCHS = ["gpt2", "gpt_neo", "gpt_neox", "gpt_neox_serial", "llama"]
IOI = "When Mary and John went to the store, John gave a drink to"
TINY_TEXT = "the cat sat on the mat and the dog ran home to the park"


@pytest.fixture(scope="module")
def bundled():
    return load_model()


def tiny(tiny_model_dir, arch):
    return load_model(str(tiny_model_dir(arch)))


def steer_hook(vector: torch.Tensor):
    return lambda act, hook: act + vector


# -- logit lens ------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_logit_lens_at_the_last_layer_is_the_models_output(tiny_model_dir, arch):
    lm = tiny(tiny_model_dir, arch)
    tokens = lm.to_tokens(TINY_TEXT)
    streams, logits = L.read_streams(lm, tokens)
    with torch.no_grad():
        lens_last = readout(lm, streams[-1, 0])
    assert torch.equal(lens_last, logits[0])  # the same modules on the same tensor: bit for bit
    grid = L.lens_grid(lm, tokens, [5] * tokens.shape[1])
    probs = torch.softmax(logits[0], -1)
    top_p, top_i = probs.topk(L.TOP_K, -1)
    np.testing.assert_array_equal(grid.top_ids[-1], top_i.numpy())
    np.testing.assert_allclose(grid.top_probs[-1], top_p.numpy(), atol=1e-6)
    np.testing.assert_allclose(grid.target_prob[-1], probs[:, 5].numpy(), atol=1e-6)
    assert np.all(grid.kl_to_final[-1] == 0) and np.all(grid.kl_to_final[:-1] >= 0)
    assert grid.layers == (-1, *range(lm.cfg.n_layers))


def test_logit_lens_on_the_bundled_model_finds_mary_only_at_the_end(bundled):
    tokens = bundled.to_tokens(IOI)
    mary = bundled.single_token_id(" Mary")
    grid = L.lens_grid(bundled, tokens, [mary] * tokens.shape[1])
    assert grid.final_top[-1] == mary
    assert grid.target_prob[-1, -1] > 0.9 and grid.target_prob[-2, -1] < 0.5
    assert len(grid.str_tokens) == tokens.shape[1]
    with pytest.raises(ValueError, match="one target id per position"):
        L.lens_grid(bundled, tokens, [mary])


def test_next_token_targets_shift_the_text_and_fill_the_end():
    tokens = torch.tensor([[0, 5, 6, 7]])
    assert L.next_token_targets(tokens, 9).tolist() == [5, 6, 7, 9]


def test_a_hook_changes_what_the_lens_reads(bundled):
    tokens = bundled.to_tokens(IOI)
    push = torch.randn(bundled.cfg.d_model, generator=torch.Generator().manual_seed(0)) * 20
    clean = L.lens_grid(bundled, tokens, [5] * tokens.shape[1])
    steered = L.lens_grid(bundled, tokens, [5] * tokens.shape[1],
                          hooks=[(act_name("resid_pre", 1), steer_hook(push))])
    np.testing.assert_array_equal(clean.target_prob[:2], steered.target_prob[:2])  # before the hook
    assert not np.allclose(clean.target_prob[2:], steered.target_prob[2:])


# -- direct logit attribution ----------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_dla_parts_sum_to_the_logit_difference(tiny_model_dir, arch):
    lm = tiny(tiny_model_dir, arch)
    tokens, lengths = lm.tokenize_batch([TINY_TEXT, "a red cat sat", "Mary gave a blue dog to John"])
    r = D.direct_logit_attribution(lm, tokens, lengths - 1, [9, 10, 11], [12, 13, 14])
    assert r.error < 1e-4, r.error
    assert abs(r.accumulated[-1] - r.total) < 1e-4
    n_heads = sum(k == "head" for k in r.kinds)
    assert n_heads == lm.cfg.n_layers * lm.cfg.n_heads
    assert r.kinds.count("mlp") == lm.cfg.n_layers
    assert ("pos_embed" in r.kinds) == (lm.W_pos is not None)
    assert r.n_prompts == 3


def test_dla_matches_the_models_own_logit_difference_on_ioi(bundled):
    tokens = bundled.to_tokens(IOI)
    mary, john = bundled.single_token_id(" Mary"), bundled.single_token_id(" John")
    r = D.direct_logit_attribution(bundled, tokens, [tokens.shape[1] - 1], [mary], [john])
    logits = bundled(tokens)[0, -1]
    assert r.total == pytest.approx(float(logits[mary] - logits[john]), abs=1e-5)
    assert r.error < 1e-4
    assert r.total > 3  # the model gets IOI right
    np.testing.assert_allclose(r.head_table.sum(), r.of_kind("head"), atol=1e-9)


def test_heads_and_bias_add_up_to_the_attention_output(bundled):
    """Oracle: the per-head split (z_h @ W_O[h]) plus b_O read out like hook_attn_out itself."""
    tokens = bundled.to_tokens(IOI)
    pos = tokens.shape[1] - 1
    r = D.direct_logit_attribution(bundled, tokens, [pos], [7], [8])
    _, cache = bundled.run_with_cache(tokens, names=[act_name("attn_out", 2), stream_hook(3)])
    fn = final_norm(bundled)
    final = cache[stream_hook(3)][0, pos].double()
    d = (bundled.W_U[:, 7] - bundled.W_U[:, 8]).double() * fn.gamma.double()
    attn = cache[act_name("attn_out", 2)][0, pos].double()
    expected = float((fn.centre(attn) / fn.scale(final) * d).sum())
    got = r.head_table[2].sum() + r.values[r.labels.index("attention bias 2")]
    assert got == pytest.approx(expected, abs=1e-6)


def test_an_intervention_becomes_its_own_part_and_the_sum_stays_exact(bundled):
    tokens = bundled.to_tokens(IOI)
    push = torch.randn(bundled.cfg.d_model, generator=torch.Generator().manual_seed(1)) * 5
    hooks = [(act_name("resid_pre", 2), steer_hook(push))]
    r = D.direct_logit_attribution(bundled, tokens, [tokens.shape[1] - 1], [7], [8], hooks=hooks)
    assert "hooks" in r.kinds and abs(r.of_kind("hooks")) > 1e-3
    assert r.error < 1e-4
    clean = D.direct_logit_attribution(bundled, tokens, [tokens.shape[1] - 1], [7], [8])
    assert "hooks" not in clean.kinds and clean.total != pytest.approx(r.total)


# -- stream anatomy --------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
def test_the_stream_is_the_sum_of_its_writes(tiny_model_dir, arch):
    lm = tiny(tiny_model_dir, arch)
    a = A.stream_anatomy(lm, lm.to_tokens(TINY_TEXT))
    assert a.sum_gap < 1e-5
    assert a.labels[0] == "embeddings" and len(a.labels) == 1 + 2 * lm.cfg.n_layers
    assert np.isnan(a.cos_input[0]) and np.all(np.abs(a.cos_input[1:]) <= 1 + 1e-9)
    assert np.all(a.write_norm > 0)


def test_a_write_from_outside_shows_as_a_gap(bundled):
    push = torch.ones(bundled.cfg.d_model) * 3
    hooks = [(act_name("resid_pre", 2), steer_hook(push))]
    a = A.stream_anatomy(bundled, bundled.to_tokens(IOI), hooks=hooks)
    assert a.sum_gap > 1e-2


# -- tasks -----------------------------------------------------------------------------------------
def test_task_sets_hold_their_answers(bundled):
    ioi = T.task_set(bundled, "ioi", n=8)
    row = ioi.tokens[0, : ioi.positions[0] + 1]
    assert bundled.to_string(row[1:]) == ioi.example
    ind = T.task_set(bundled, "induction", n=8)
    # BOS + x + x[:cut]: the answer is the token after the first copy of the last token
    last = ind.tokens[0, -1]
    first = int((ind.tokens[0, 1:] == last).nonzero()[0]) + 1
    assert int(ind.tokens[0, first + 1]) == int(ind.answer_ids[0])
    assert int(ind.other_ids[0]) == int(last)
    assert (ind.answer_ids != ind.other_ids).all()
    with pytest.raises(ValueError, match="task must be one of"):
        T.task_set(bundled, "nope")


# -- the tuned lens --------------------------------------------------------------------------------
def test_tuned_lens_beats_the_logit_lens_at_every_layer_on_held_out_text(bundled):
    train = TL.stream_data(bundled, build_corpus(60, seed=101).rows)
    held = TL.stream_data(bundled, build_corpus(12, seed=202).rows)  # another seed: other documents
    lens = TL.TunedLens(steps=120, lr=5e-3, batch_tokens=256, init="zero").fit(bundled, train)
    logit, tuned = TL.kl_per_layer(bundled, held), TL.kl_per_layer(bundled, held, lens)
    assert logit[-1] == 0 and tuned[-1] == 0  # the last point is the output itself
    assert np.all(tuned[:-1] < logit[:-1]), (logit, tuned)
    assert lens.steps_done_ == 120 and lens.A_.shape == (bundled.cfg.n_layers, 128, 128)


def test_an_untrained_zero_lens_is_the_logit_lens(bundled):
    data = TL.stream_data(bundled, build_corpus(4, seed=5).rows)
    lens = TL.TunedLens(steps=0, init="zero").fit(bundled, data)
    np.testing.assert_allclose(TL.kl_per_layer(bundled, data, lens), TL.kl_per_layer(bundled, data))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_tuned_lens_trains_on_pasted_text_for_a_hub_model(tiny_model_dir, arch):
    lm = tiny(tiny_model_dir, arch)
    rows, lengths = lm.tokenize_batch([TINY_TEXT * 2, "the red dog sat on a small mat . " * 3,
                                       "Mary and John ran to the big park . " * 3])
    data = TL.stream_data(lm, rows, lengths)
    train, held = data.split(0.25)
    assert train.n_tokens + held.n_tokens == data.n_tokens == int((lengths - 1).sum())
    lens = TL.TunedLens(steps=60, lr=1e-2, batch_tokens=64, init="least_squares").fit(lm, train)
    assert np.all(TL.kl_per_layer(lm, train, lens)[:-1] < TL.kl_per_layer(lm, train)[:-1])


def test_tuned_lens_settings_are_checked():
    with pytest.raises(ValueError, match="init"):
        TL.TunedLens(init="random")
    with pytest.raises(ValueError, match="steps"):
        TL.TunedLens(steps=-1)


@pytest.mark.parametrize("faster", [True, False])
def test_the_tuned_lens_takes_bfloat16_where_it_measured_faster_unless_told(bundled, monkeypatch, faster):
    import torch

    from core.models import dtype as D

    measured = D.DtypeChoice(torch.bfloat16 if faster else torch.float32, 100.0, 300.0 if faster else 50.0,
                             1, "test")
    monkeypatch.setattr(D, "fastest_matmul_dtype", lambda: measured)
    data = TL.stream_data(bundled, build_corpus(2, seed=5).rows)
    assert TL.TunedLens().bf16 is None  # the default is the measured choice
    assert TL.TunedLens(steps=1, init="zero").fit(bundled, data).bf16_ is faster
    for told in (True, False):  # an explicit setting wins over the measurement
        assert TL.TunedLens(steps=1, init="zero", bf16=told).fit(bundled, data).bf16_ is told
