"""Attention patterns, value weighting, entropy and head types: oracles on tiny models of every family
and on hand-built patterns, plus the ground-truth check on the bundled model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.bundled.report import load_report, report_heads
from core.interp.attention import head_scores as H
from core.interp.attention import patterns as A
from core.models import act_name, load_model
from core.models.loading import BUNDLED_DIR

ARCHS = ("gpt2", "gpt_neo", "gpt_neox", "gpt_neox_serial", "llama")
TEXT = "the cat sat on the mat . the dog ran to the park . the cat sat on the mat ."


def bundled():
    return load_model()  # committed with the repo: a failure to load is a real failure


@pytest.mark.parametrize("arch", ARCHS)
def test_run_attention_value_norms_match_an_explicit_loop(tiny_model_dir, arch):
    """||v_k W_O^h|| from hook_v equals (ln1(resid_pre_k) W_V^h + b_V^h) W_O^h, head by head."""
    lm = load_model(str(tiny_model_dir(arch)))
    tokens = lm.to_tokens(TEXT)
    run = A.run_attention(lm, tokens)
    c = lm.cfg
    assert run.pattern.shape == (c.n_layers, c.n_heads, tokens.shape[1], tokens.shape[1])
    assert run.value_norm.shape == (c.n_layers, c.n_heads, tokens.shape[1])
    _, cache = lm.run_with_cache(tokens, names=[act_name("resid_pre", L) for L in range(c.n_layers)])
    for layer in range(c.n_layers):
        ln1 = lm.adapter.block_modules(layer).ln1
        w = lm.attention_weights(layer)
        x = ln1(cache[act_name("resid_pre", layer)][0]).detach()  # [pos, d_model]
        for head in range(c.n_heads):
            for k in range(tokens.shape[1]):
                v = x[k] @ w.W_V[head] + (w.b_V[head] if w.b_V is not None else 0)  # [d_head]
                expected = torch.linalg.norm(v @ w.W_O[head]).item()
                assert run.value_norm[layer, head, k] == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_patterns_are_causal_distributions(tiny_model_dir, arch):
    lm = load_model(str(tiny_model_dir(arch)))
    run = A.run_attention(lm, lm.to_tokens(TEXT))
    assert np.allclose(run.pattern.sum(-1), 1, atol=1e-5)
    upper = np.triu(np.ones(run.pattern.shape[-2:], dtype=bool), 1)
    assert np.abs(run.pattern[..., upper]).max() < 1e-7
    assert run.str_tokens[0] == lm.tokenizer.decode([lm.tokenizer.bos_token_id])


def test_value_weighted_against_an_explicit_loop():
    rng = np.random.default_rng(0)
    pattern = rng.random((2, 3, 5, 5)) * np.tril(np.ones((5, 5)))
    pattern /= pattern.sum(-1, keepdims=True)
    norms = rng.random((2, 3, 5)) + 0.1
    raw = A.value_weighted(pattern, norms, normalize=False)
    shown = A.value_weighted(pattern, norms)
    for layer, head, q, k in np.ndindex(pattern.shape):
        assert raw[layer, head, q, k] == pytest.approx(pattern[layer, head, q, k] * norms[layer, head, k])
        total = sum(pattern[layer, head, q, j] * norms[layer, head, j] for j in range(5))
        expected = pattern[layer, head, q, k] * norms[layer, head, k] / total
        assert shown[layer, head, q, k] == pytest.approx(expected)


def test_value_weighting_with_equal_norms_changes_nothing_and_a_silent_token_loses_its_weight():
    pattern = np.tril(np.ones((4, 4)))
    pattern /= pattern.sum(-1, keepdims=True)
    assert np.allclose(A.value_weighted(pattern, np.full(4, 2.5)), pattern)
    silent_first = A.value_weighted(pattern, np.array([0.0, 1.0, 1.0, 1.0]))
    assert np.allclose(silent_first[1:, 0], 0) and np.allclose(silent_first[1:].sum(-1), 1)
    assert np.allclose(silent_first[0], 0)  # nothing visible writes anything: an all-zero row


def test_entropy_of_one_hot_and_uniform_patterns():
    n = 6
    one_hot = np.eye(n)[None]  # every query looks only at itself
    assert A.entropy(one_hot) == pytest.approx([0.0])
    uniform = np.tril(np.ones((n, n)))
    uniform /= uniform.sum(-1, keepdims=True)
    assert A.row_entropy(uniform) == pytest.approx(np.log2(np.arange(1, n + 1)))
    assert A.entropy(uniform) == pytest.approx(A.uniform_entropy(n))


def test_from_token_slices_one_query():
    pattern = np.random.default_rng(0).random((2, 3, 5, 5))
    assert np.array_equal(A.from_token(pattern, 3), pattern[:, :, 3, :4])


# -- head types on hand-built patterns ------------------------------------------------------------------
L = 6
N = 1 + 2 * L


def one_hot_pattern(targets):
    p = torch.zeros(len(targets), len(targets))
    for q, k in enumerate(targets):
        p[q, k] = 1.0
    return p


def test_head_types_on_hand_built_patterns():
    patterns = torch.stack([
        one_hot_pattern([max(q - 1, 0) for q in range(N)]),  # previous token
        one_hot_pattern([q - L + 1 if q > L else 0 for q in range(N)]),  # induction
        one_hot_pattern([0] * N),  # resting on the first token
        one_hot_pattern([q - L if q > L else q for q in range(N)]),  # duplicate token (itself before)
    ])[None]  # [batch 1, head 4, q, k]
    scores = {k: v[None].numpy() for k, v in H.all_scores(patterns, L).items()}  # kind -> [1 layer, 4]
    assert scores["previous_token"][0, 0] == pytest.approx(1.0)
    assert scores["induction"][0, 1] == pytest.approx(1.0) and scores["previous_token"][0, 1] < 0.2
    types = A.head_types(scores)
    assert types.tolist() == [["previous_token", "induction", "first_token", "duplicate_token"]]


def test_head_types_threshold_and_tie_break():
    scores = {"induction": np.array([[0.6, 0.1]]), "previous_token": np.array([[0.6, 0.2]]),
              "first_token": np.array([[0.0, 0.3]])}
    assert A.head_types(scores, threshold=0.4).tolist() == [["induction", ""]]  # the tie goes to induction


def test_report_heads_parses_and_missing_report_is_none(tmp_path):
    report = {"heads": {"induction": [{"head": "2.1", "score": 0.96}, {"head": "2.3", "score": 0.94}],
                        "previous_token": []}}
    assert report_heads(report) == {"induction": [(2, 1, 0.96), (2, 3, 0.94)], "previous_token": []}
    assert load_report(tmp_path) is None


# -- the bundled model: ground truth ---------------------------------------------------------------
def test_the_listed_induction_head_has_the_top_induction_score():
    lm = bundled()
    listed = report_heads(load_report(BUNDLED_DIR))["induction"]
    assert listed, "the evaluation report lists no induction head"
    measured = H.head_scores(lm, n=32, half_len=24, seed=0).scores["induction"]  # [layer, head]
    top_listed = max(listed, key=lambda t: t[2])
    layer, head = np.unravel_index(int(measured.argmax()), measured.shape)
    assert (int(layer), int(head)) in {(a, b) for a, b, _ in listed}
    assert measured[top_listed[0], top_listed[1]] >= 0.5
    # and the heads the report does not list score clearly lower than the best listed one
    others = [float(measured[a, b]) for a, b in np.ndindex(measured.shape) if (a, b) not in
              {(x, y) for x, y, _ in listed}]
    assert max(others) < float(measured.max())


def test_prompt_induction_on_a_hand_built_repeat():
    tokens = [0, 5, 6, 7, 5, 6, 7]  # BOS, x y z, x y z
    n = len(tokens)
    induction = np.zeros((n, n))
    for q in range(n):
        induction[q, q - 2 if q >= 4 else 0] = 1.0  # q = 4 ("x" again) -> 2 ("y"), and so on
    previous = np.zeros((n, n))
    for q in range(n):
        previous[q, max(q - 1, 0)] = 1.0
    found = A.prompt_induction(tokens, np.stack([induction, previous])[None])  # [1 layer, 2 heads]
    assert found.n_queries == 3
    assert found.share.tolist() == [[1.0, 0.0]]
    assert A.prompt_induction([0, 1, 2, 3], np.zeros((1, 1, 4, 4))).n_queries == 0
