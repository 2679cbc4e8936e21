"""Reading features: activations collected at the right place, AUROC, ground-truth matching,
top contexts, token search and logit effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.metrics import roc_auc_score

from core.interp.sae.data import ActivationSet, collect_activations, docs_within, split
from core.interp.sae.features import (
    FeatureActs,
    attribute_token_ids,
    auroc,
    best_attribute,
    best_f1,
    feature_acts,
    feature_stats,
    features_for_token,
    ground_truth_matches,
    logit_effects,
    top_contexts,
)
from core.interp.sae.model import SAE, SAEConfig
from core.interp.sae.report import reconstruction
from core.models import act_name, load_model

TEXTS = ["the cat sat on the mat .", "Mary gave a red ball to John", "the dog ran home",
         "a big blue cat and a small red dog sat on the mat", "John is happy"]


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


def test_collected_activations_are_the_cached_ones_without_bos_and_padding(lm):
    hook = act_name("resid_post", 1)
    data = collect_activations(lm, TEXTS, hook, batch_size=2)
    tokens, lengths = lm.tokenize_batch(TEXTS)
    assert len(data) == int((lengths - 1).sum())  # every real token but BOS
    assert (data.pos >= 1).all() and (data.pos < lengths[data.doc]).all()
    _, cache = lm.run_with_cache(tokens, names=[hook])
    expected = cache[hook][data.doc, data.pos]  # [n, d_model]
    assert torch.allclose(data.acts, expected, atol=1e-5)
    assert torch.equal(data.token_ids, tokens[data.doc, data.pos])
    # rows of a document are consecutive and in position order (top_contexts relies on it)
    first = torch.searchsorted(data.doc, data.doc)
    assert torch.equal(data.pos, data.pos[first] + torch.arange(len(data)) - first)


def test_documents_are_batched_by_length_so_little_is_padded(lm, monkeypatch):
    widths = []
    run = type(lm).run_with_cache
    def recording(self, tokens, **kw):
        widths.append(tuple(tokens.shape))
        return run(self, tokens, **kw)

    monkeypatch.setattr(type(lm), "run_with_cache", recording)
    collect_activations(lm, TEXTS, act_name("resid_post", 0), batch_size=2)
    _, lengths = lm.tokenize_batch(TEXTS)
    ordered = sorted(lengths.tolist())
    assert widths == [(2, ordered[1]), (2, ordered[3]), (1, ordered[4])]  # shortest first


def test_a_document_cut_by_max_tokens_has_the_length_that_was_kept(lm):
    hook = act_name("resid_post", 0)
    tokens, lengths = lm.tokenize_batch(TEXTS)
    rows = (lengths - 1).cumsum(0)  # rows kept up to each document
    cap = int(rows[2]) + 3  # three rows into the fourth document (which has more)
    assert lengths[3] - 1 > 3
    data = collect_activations(lm, TEXTS, hook, batch_size=2, max_tokens=cap)
    assert len(data) == cap and data.tokens.shape[0] == 4
    assert data.lengths.tolist() == [*lengths[:3].tolist(), 4]  # BOS + the 3 positions kept
    assert int(data.pos[-1]) == 3 and int(data.doc[-1]) == 3
    assert (data.pos < data.lengths[data.doc]).all()
    # the feature dashboard reads windows up to lengths - 1: every context must stay in range
    F = _acts({0: np.ones(cap)}, cap, 1, data.token_ids)
    vocab = [f"t{i}" for i in range(lm.cfg.d_vocab)]
    last = top_contexts(F, 0, data, vocab, k=cap, before=2, after=3)[-1]
    assert last.tokens == tuple(vocab[i] for i in tokens[3, 1:4].tolist()) and last.center == 2
    assert last.acts == (1.0, 1.0, 1.0)
    # split keeps the cut length with its document
    assert split(data, 0.5)[1].lengths[-1] == 4


def test_docs_within_counts_the_documents_a_token_cap_reads():
    lengths = torch.tensor([6, 6, 6, 1, 6])  # 5, 5, 5, 0, 5 rows after BOS
    assert [docs_within(lengths, m) for m in (1, 5, 6, 10, 11, 15, 16, 20, 99)] == [1, 1, 2, 2, 3, 3, 5, 5, 5]


@pytest.mark.parametrize(("hook", "stop"), [
    ("hook_embed", 0), ("blocks.0.hook_resid_pre", 1),
    ("blocks.0.hook_resid_post", 1), ("blocks.0.hook_mlp_out", 1), ("blocks.1.hook_attn_out", None),
    ("blocks.1.hook_resid_post", None), ("ln_final.hook_normalized", None),
])
def test_activations_are_read_with_the_forward_pass_stopped_after_the_hook(lm, hook, stop, monkeypatch):
    calls = []
    full = lm.run_with_cache

    def spy(tokens, names=None, **kwargs):
        calls.append((names, kwargs.get("stop_at_layer")))
        return full(tokens, names=names, **kwargs)

    monkeypatch.setattr(lm, "run_with_cache", spy)
    data = collect_activations(lm, TEXTS, hook, batch_size=4)
    assert calls == [([hook], stop), ([hook], stop)]  # two batches, each stopped after the hook
    monkeypatch.undo()
    tokens, _ = lm.tokenize_batch(TEXTS)
    _, cache = lm.run_with_cache(tokens, names=[hook])
    assert torch.allclose(data.acts, cache[hook][data.doc, data.pos], atol=1e-5)


def test_hooks_without_one_vector_per_token_are_refused(lm):
    for hook in ("hook_pos_embed", "blocks.0.attn.hook_pattern"):  # [1, pos, d]; [batch, head, q, k]
        with pytest.raises(ValueError, match="not a \\[batch, pos, d\\] activation"):
            collect_activations(lm, TEXTS, hook)


def test_attribute_tokens_come_from_the_models_single_token_rule():
    class FakeLM:  # single_token_id decides what is one token (here: a made-up vocabulary)
        def single_token_id(self, word):
            return {" red": 7, "Red": 8, "blue": 9}.get(word)

    ids = attribute_token_ids(FakeLM(), {"colours": (" red", " blue", " mauve")})
    assert ids["colours"].tolist() == [7, 8, 9]


def test_split_keeps_whole_documents(lm):
    data = collect_activations(lm, TEXTS, act_name("resid_post", 0))
    a, b = split(data, 0.5)
    assert len(a) + len(b) == len(data) and len(a) > 0 and len(b) > 0
    assert torch.equal(torch.cat([a.acts, b.acts]), data.acts)
    assert torch.equal(torch.cat([a.token_ids, b.token_ids]), data.token_ids)
    assert b.doc.min() == 0 and a.tokens.shape[0] + b.tokens.shape[0] == data.tokens.shape[0]


def test_auroc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    values = np.where(rng.random(500) < 0.6, 0.0, rng.integers(1, 5, 500).astype(float))
    labels = rng.random(500) < 0.3
    values[labels] += rng.random(labels.sum()) < 0.5  # positives a little higher
    assert auroc(values, labels) == pytest.approx(roc_auc_score(labels, values), abs=1e-12)
    assert auroc(values, labels) > 0.55


def _acts(columns: dict[int, np.ndarray], n: int, d_sae: int, token_ids) -> FeatureActs:
    dense = np.zeros((n, d_sae), dtype=np.float32)
    for j, col in columns.items():
        dense[:, j] = col
    return FeatureActs(sparse.csc_matrix(dense), np.asarray(token_ids))


def test_ground_truth_matching_finds_the_planted_feature():
    rng = np.random.default_rng(1)
    n, d_sae = 2000, 20
    token_ids = rng.integers(0, 50, n)
    colour = np.isin(token_ids, [3, 4, 5])
    place = np.isin(token_ids, [10, 11])
    columns = {j: np.where(rng.random(n) < 0.05, rng.random(n), 0) for j in range(d_sae)}
    columns[7] = np.where(colour, 1 + rng.random(n), 0)  # a perfect colour feature
    columns[12] = np.where(place & (rng.random(n) < 0.5), 1.0, 0)  # half the places
    F = _acts(columns, n, d_sae, token_ids)
    matches = {m.attribute: m for m in ground_truth_matches(
        F, {"colours": np.array([3, 4, 5]), "places": np.array([10, 11]), "absent": np.array([99])})}
    c, p, a = matches["colours"], matches["places"], matches["absent"]
    assert (c.feature, c.found, c.precision, c.recall) == (7, True, 1.0, 1.0)
    assert c.auroc == pytest.approx(1.0)
    assert p.feature == 12 and not p.found and 0.7 < p.auroc < 0.8 and p.precision == 1.0
    assert 0.4 < p.recall < 0.6
    assert (a.feature, a.n_tokens, a.found) == (-1, 0, False)
    labels, match = best_attribute(F, {"colours": np.array([3, 4, 5]), "places": np.array([10, 11])})
    assert labels[7] == "colours" and match[7] == pytest.approx(1.0)
    tp = (columns[12] > 0).sum()  # precision 1, recall about half
    assert labels[12] == "places" and match[12] == pytest.approx(2 * tp / (tp + place.sum()))
    assert labels[0] == "" and match[0] < 0.1  # a random sparse feature matches nothing


def test_best_f1_picks_the_threshold_that_separates():
    values = np.array([5.0, 4.0, 3.0, 0.5, 0.4, 0.0, 0.0])
    labels = np.array([True, True, True, False, False, False, True])
    assert best_f1(values, labels) == pytest.approx((1.0, 0.75))
    assert best_f1(np.zeros(3), np.array([True, False, True])) == (0.0, 0.0)


def _tiny_set() -> ActivationSet:
    # two documents: BOS + 4 tokens, BOS + 3 tokens (rows skip BOS)
    tokens = torch.tensor([[0, 11, 12, 13, 14], [0, 21, 22, 23, 2]])
    lengths = torch.tensor([5, 4])
    doc = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    pos = torch.tensor([1, 2, 3, 4, 1, 2, 3])
    return ActivationSet(torch.zeros(7, 2), tokens, lengths, doc, pos, "h", "m")


def test_top_contexts_show_the_window_around_the_strongest_tokens():
    data = _tiny_set()
    col = np.array([0, 0.5, 0, 0, 0, 2.0, 0.1])  # strongest: doc 1, position 2 (token 22)
    F = _acts({0: col}, 7, 1, data.token_ids)
    vocab = [f"t{i}" for i in range(30)]
    top = top_contexts(F, 0, data, vocab, k=5, before=1, after=1)
    assert [c.value for c in top] == [2.0, 0.5, pytest.approx(0.1)]  # zeros are left out
    first = top[0]
    assert first.tokens == ("t21", "t22", "t23") and first.center == 1
    assert first.acts == (0.0, 2.0, pytest.approx(0.1))
    assert top[1].tokens == ("t11", "t12", "t13") and top[1].tokens[top[1].center] == "t12"


def test_features_for_token_and_stats():
    token_ids = np.array([5, 5, 6, 5, 7])
    F = _acts({0: np.array([1, 1, 0, 1, 0]), 1: np.array([0, 2, 3, 0, 0.0])}, 5, 3, token_ids)
    hits = features_for_token(F, 5)
    assert [h[0] for h in hits] == [0, 1]
    assert hits[0][1:] == pytest.approx((1.0, 1.0)) and hits[1][1:] == pytest.approx((2 / 3, 1 / 3))
    assert features_for_token(F, 42) == []
    stats = feature_stats(F, d_vocab=10)
    assert stats.density.tolist() == pytest.approx([0.6, 0.4, 0.0])
    assert stats.max_act.tolist() == [1.0, 3.0, 0.0] and stats.top_token.tolist() == [5, 6, -1]


def test_logit_effects_read_the_decoder_row_through_the_unembedding():
    sae = SAE(SAEConfig(4, 8))
    W_U = torch.zeros(4, 6)
    W_U[:, 2] = sae.W_dec[3].detach()  # token 2 is aligned with feature 3
    W_U[:, 5] = -sae.W_dec[3].detach()
    top, bottom = logit_effects(sae, W_U, 3, k=2)
    assert top[0] == (2, pytest.approx(1.0)) and bottom[0] == (5, pytest.approx(-1.0))
    assert top[1][1] < 1.0 and bottom[1][1] > -1.0
    top, bottom = logit_effects(sae, W_U, 3, k=2, exclude=[5])
    assert 5 not in [i for i, _ in top + bottom] and top[0][0] == 2


def test_feature_acts_and_reconstruction_metrics_agree_with_dense_math():
    sae = SAE(SAEConfig(8, 32), seed=2)
    x = torch.randn(300, 8)
    F = feature_acts(sae, x, torch.zeros(300, dtype=torch.long), chunk=64)
    dense = sae.encode(x).detach().numpy()
    assert np.allclose(F.matrix.toarray(), dense, atol=1e-6)
    r = reconstruction(sae, x, chunk=64)
    err = (sae(x) - x).pow(2).sum(1).mean().item()
    assert r.mse == pytest.approx(err, rel=1e-5)
    assert r.l0 == pytest.approx((dense > 0).sum(1).mean(), rel=1e-6)
    assert r.dead_fraction == pytest.approx(float((dense.max(0) == 0).mean()))


def test_attribute_tokens_include_every_single_token_form(lm):
    ids = attribute_token_ids(lm, {"colours": (" red", " blue", " mauve"), "names": (" Mary",)})
    vocab = lm.tokenizer.get_vocab()
    assert set(ids["colours"]) == {vocab["red"], vocab["blue"]}  # " mauve" is not a token here
    assert set(ids["names"]) == {vocab["Mary"]}
