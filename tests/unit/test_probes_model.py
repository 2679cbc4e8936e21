"""Probes on a real (tiny) model: collected activations equal the cached ones at the right token,
and the causal check's projection removes a direction exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.probes.activations import collect_activations, hook_points, marked_positions
from core.interp.probes.causal import (
    Behaviour,
    behaviour_scores,
    causal_check,
    orthonormal_basis,
    project_out,
    projection_hook,
)
from core.interp.probes.data import ProbeDataError
from core.models import act_name, load_model
from core.models.hook_names import EMBEDDINGS

TEXTS = ["the cat sat on the mat", "a dog ran home", "Mary gave the red cat to John .",
         "the big dog is happy", "John sat"]
SPANS = [(4, 7), (2, 5), (0, 4), (8, 11), (5, 8)]  # cat, dog, Mary, dog, sat
MARKED = [2, 2, 1, 3, 2]  # their token index, BOS = 0 (one token per word)


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


def _reference(lm, names, position):
    """One unbatched run_with_cache per text, read at the position by hand."""
    rows = []
    for text, marked in zip(TEXTS, MARKED, strict=True):
        tokens = lm.to_tokens(text)
        _, cache = lm.run_with_cache(tokens, names=list(names))
        n = tokens.shape[1]
        idx = n - 1 if position == "last" else marked
        rows.append([cache[name][0, 1:n].mean(0) if position == "mean" else cache[name][0, idx]
                     for name in names])
    return np.array([[r[i].numpy() for r in rows] for i in range(len(names))])


@pytest.mark.parametrize("position", ["last", "marked", "mean"])
@pytest.mark.parametrize("budget", [1 << 16, 9])  # one batched pass, or a chunk per text or two
def test_collected_activations_equal_cached_ones(lm, position, budget):
    points = hook_points(lm.cfg.n_layers, "resid")
    names = points.hook_names
    # the lab's layers: the embeddings (before block 0), then layer L = the stream after block L
    assert points.layers == (EMBEDDINGS, *range(lm.cfg.n_layers))
    assert names[0] == act_name("resid_pre", 0) and names[1] == act_name("resid_post", 0)
    assert names[-1] == act_name("resid_post", lm.cfg.n_layers - 1)
    acts = collect_activations(lm, TEXTS, names, position, SPANS, token_budget=budget, bf16=False)
    assert acts.shape == (lm.cfg.n_layers + 1, len(TEXTS), lm.cfg.d_model)
    np.testing.assert_allclose(acts, _reference(lm, names, position), atol=1e-5, rtol=1e-5)


def test_bf16_collection_is_close(lm):
    points = hook_points(lm.cfg.n_layers, "mlp_post")
    names = points.hook_names
    assert points.layers == tuple(range(lm.cfg.n_layers)) and names[0] == act_name("post", 0)
    exact = collect_activations(lm, TEXTS, names, "last", bf16=False)
    fast = collect_activations(lm, TEXTS, names, "last", bf16=True)
    assert exact.shape[-1] == lm.cfg.d_mlp
    assert np.abs(fast - exact).max() < 0.05 * np.abs(exact).max()


def test_marked_positions_use_the_words_last_token(lm):
    assert list(marked_positions(lm, TEXTS, SPANS)) == MARKED
    with pytest.raises(ProbeDataError, match="marks no token"):
        collect_activations(lm, TEXTS, ["hook_embed"], "marked", None)


def test_projection_removes_the_direction_exactly():
    gen = torch.Generator().manual_seed(0)
    basis = orthonormal_basis(torch.randn(3, 16, generator=gen).numpy())
    x = torch.randn(5, 7, 16, generator=gen) * 10
    out = project_out(x, basis)
    assert (out @ basis.T).abs().max() < 1e-5  # dot product with every removed direction ~ 0
    assert torch.allclose(project_out(out, basis), out, atol=1e-5)  # idempotent
    # what is orthogonal to the removed span is untouched
    rest = x - (x @ basis.T) @ basis
    assert torch.allclose(out, rest, atol=1e-6)
    rank2 = orthonormal_basis(np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 1.0, 0]]))
    assert rank2.shape == (2, 3) and torch.allclose(rank2 @ rank2.T, torch.eye(2), atol=1e-6)


def test_projection_hook_in_a_forward_pass(lm):
    name = act_name("resid_post", 0)
    tokens = lm.to_tokens(TEXTS)
    _, clean = lm.run_with_cache(tokens, names=[name])
    direction = clean[name][:, 1:].mean((0, 1)).numpy()  # a direction the stream really uses
    basis = orthonormal_basis(direction[None])
    with lm.hooks([(name, projection_hook(basis))]):
        _, cache = lm.run_with_cache(tokens, names=[name])
    dots = cache[name] @ basis.T
    assert dots.abs().max() < 1e-4 * clean[name].abs().max()
    assert (clean[name] @ basis.T).abs().max() > 0.1  # it was there before


def test_causal_check_conditions(lm):
    behaviour = Behaviour("demo", "mat - dog", "mat", ("the cat sat on the", "a dog ran to the"),
                          ((" mat",), (" park",)), ((" dog",), (" mat", " cat")))
    clean = behaviour_scores(lm, behaviour)
    # every direction of the final stream removed: all logits equal, so every score is 0
    everything = {"all removed": np.eye(lm.cfg.d_model)}
    result = causal_check(lm, "ln_final.hook_normalized", everything, behaviour)
    assert result.conditions == ("clean", "all removed", "random direction removed")
    assert result.mean[0] == pytest.approx(clean.mean(), abs=1e-5)
    assert np.abs(result.mean[1:]).max() < 1e-4 and result.n_removed == lm.cfg.d_model
    # (not the all-ones direction: LayerNorm subtracts the mean, so removing it changes nothing)
    direction = np.random.default_rng(0).normal(size=(1, lm.cfg.d_model))
    one = causal_check(lm, act_name("resid_pre", 1), {"one": direction}, behaviour)
    assert one.n_removed == 1 and one.mean[0] == pytest.approx(clean.mean(), abs=1e-5)
    assert abs(one.mean[1] - one.mean[0]) > 1e-3


def test_collection_ends_after_the_deepest_block_it_reads(lm):
    """Reading only layer 0 never runs block 1 (run_with_cache's stop_at_layer), and reading the
    last block unembeds a single position; the values equal the cached ones either way."""
    early = [act_name("resid_pre", 0), act_name("resid_post", 0)]
    calls = []
    with lm.hooks([(act_name("attn_out", 1), lambda act, hook: calls.append(hook.name))]):
        acts = collect_activations(lm, TEXTS, early, "last", bf16=False)
    assert calls == []
    np.testing.assert_allclose(acts, _reference(lm, early, "last"), atol=1e-5, rtol=1e-5)
    shapes = []
    handle = lm.model.get_output_embeddings().register_forward_hook(
        lambda module, args, out: shapes.append(tuple(out.shape)))
    try:
        collect_activations(lm, TEXTS, hook_points(lm.cfg.n_layers, "resid").hook_names, "last", bf16=False)
    finally:
        handle.remove()
    assert all(shape[1] == 1 for shape in shapes)


def test_behaviour_scores_are_last_token_logit_differences(lm):
    behaviour = Behaviour("demo", "mat - dog", "mat", ("the cat sat on the", "a dog ran"),
                          ((" mat",), (" home", " park")), ((" dog",), (" cat",)))
    want = []
    for prompt, right, wrong in zip(behaviour.prompts, behaviour.right, behaviour.wrong, strict=True):
        logits = lm(lm.to_tokens(prompt))[0, -1]
        ids = lambda words: [lm.to_tokens(w, prepend_bos=False)[0, 0].item() for w in words]  # noqa: E731
        want.append(float(logits[ids(right)].mean() - logits[ids(wrong)].mean()))
    np.testing.assert_allclose(behaviour_scores(lm, behaviour), want, atol=1e-5)


@pytest.mark.parametrize(("word", "message"), [(" zebra", "is an unknown word"),
                                               (" cat sat", "is 2 tokens")])
def test_the_causal_check_needs_known_single_tokens(lm, word, message):
    """An unknown word would be scored as the tokenizer's unknown token: refused, like a word of
    several tokens."""
    behaviour = Behaviour("demo", "x", "x", ("the cat sat on the",), ((word,),), ((" dog",),))
    with pytest.raises(ValueError, match=f"{message} for .*the check needs single tokens"):
        behaviour_scores(lm, behaviour)
