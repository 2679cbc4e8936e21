"""MLP neurons: weights read the right way round in every family, summaries equal brute force, the
rule language, explain/score against ground truth, gate/up, and knock-out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from core.interp.neurons import ablation as K
from core.interp.neurons import activations as Ac
from core.interp.neurons import gated as G
from core.interp.neurons import labels as Lb
from core.interp.neurons import rules as R
from core.interp.neurons import scoring as S
from core.interp.neurons import weights as Wt
from core.interp.residual.readout import final_norm
from core.models import act_name, load_model
from core.world.corpus import build_corpus

ARCHS = ["gpt2", "gpt_neo", "gpt_neox", "llama"]
TEXT = ["the cat sat on the mat and the dog ran home", "Mary gave a red cat to John . John is happy"]


@pytest.fixture(scope="module")
def bundled():
    return load_model()


@pytest.fixture(scope="module")
def labelled(bundled):
    return Lb.labelled_tokens(bundled, 200, seed=3), Lb.labelled_tokens(bundled, 200, seed=4)


def tiny(tiny_model_dir, arch):
    return load_model(str(tiny_model_dir(arch)))


@pytest.mark.parametrize("arch", ARCHS)
def test_mlp_weights_recompute_the_mlp_output(tiny_model_dir, arch):
    """Oracle: act(norm2(x) @ W_in + b_in) @ W_out + b_out is the model's own hook_mlp_out."""
    lm = tiny(tiny_model_dir, arch)
    tokens, _ = lm.tokenize_batch(TEXT)
    layer = 1
    read = act_name("resid_mid", layer) if lm.cfg.has_resid_mid else act_name("resid_pre", layer)
    _, cache = lm.run_with_cache(tokens, names=[read, act_name("post", layer), act_name("mlp_out", layer)])
    w = Wt.mlp_weights(lm, layer)
    x = Wt.mlp_modules(lm, layer)["norm"](cache[read]).detach()
    act = Wt.activation_fn(lm, layer)
    pre = x @ w.W_in + (w.b_in if w.b_in is not None else 0)
    post = act(x @ w.W_gate) * pre if w.gated else act(pre)
    assert w.gated == (arch == "llama")
    torch.testing.assert_close(post, cache[act_name("post", layer)], atol=1e-5, rtol=1e-4)
    out = post @ w.W_out + (w.b_out if w.b_out is not None else 0)
    torch.testing.assert_close(out, cache[act_name("mlp_out", layer)], atol=1e-5, rtol=1e-4)
    assert w.W_in.shape == (lm.cfg.d_model, lm.cfg.d_mlp) and w.W_out.shape == (lm.cfg.d_mlp, lm.cfg.d_model)


def test_writes_rank_tokens_by_the_unembedded_output_row(bundled):
    tl = Wt.writes(bundled, 2, 17, k=5)
    fn = final_norm(bundled)
    scores = (fn.centre(Wt.mlp_weights(bundled, 2).W_out[17]) * fn.gamma) @ bundled.W_U
    scores[:3] = -torch.inf  # the special tokens are left out
    assert tl.top_ids.tolist() == scores.topk(5).indices.tolist()
    assert np.all(np.diff(tl.top_values) <= 0) and np.all(np.diff(tl.bottom_values) >= 0)
    rd = Wt.reads(bundled, 0, 17, k=5)
    assert all(i >= 3 for i in rd.top_ids)
    with pytest.raises(ValueError, match="no gate"):
        Wt.reads(bundled, 0, 17, which="gate")


def test_neuron_records_equal_brute_force(bundled):
    rows = build_corpus(12, seed=9).rows
    rec = Ac.neuron_records(bundled, 1, rows, k=5)
    _, cache = bundled.run_with_cache(rows, names=[act_name("post", 1)])
    acts = cache[act_name("post", 1)][:, 1:].reshape(-1, bundled.cfg.d_mlp)  # BOS column left out
    assert rec.n_tokens == acts.shape[0] == 12 * 127
    for n in (0, 100, 511):
        ref = acts[:, n].topk(5).values.numpy()
        np.testing.assert_allclose(rec.top_values[n], ref, rtol=2e-3, atol=2e-3)  # float16 storage
        np.testing.assert_allclose(rec.bottom_values[n], acts[:, n].topk(5, largest=False).values.numpy(),
                                   rtol=2e-3, atol=2e-3)
        row, pos = rec.top_where[n, 0]
        assert pos >= 1 and abs(float(cache[act_name("post", 1)][row, pos, n]) - rec.top_values[n, 0]) < 1e-2
        assert rec.top_window[n, 0, Ac.BEFORE] == pytest.approx(rec.top_values[n, 0], abs=1e-2)
        assert rec.hist_counts[n].sum() == rec.n_tokens
        assert rec.mean[n] == pytest.approx(float(acts[:, n].mean()), abs=1e-3)
        assert rec.frac_positive[n] == pytest.approx(float((acts[:, n] > 0).float().mean()), abs=1e-3)
    ids, centre = rec.window_tokens(int(rec.top_where[0, 0, 0]), int(rec.top_where[0, 0, 1]))
    assert ids[centre] == rows[rec.top_where[0, 0, 0], rec.top_where[0, 0, 1]]


def test_neuron_records_skip_padding(tiny_model_dir):
    lm = tiny(tiny_model_dir, "gpt2")
    rows, lengths = lm.tokenize_batch(TEXT)
    rec = Ac.neuron_records(lm, 0, rows, lengths, k=3)
    assert rec.n_tokens == int((lengths - 1).sum())
    assert (rec.rows[0, int(lengths[0]):] == -1).all() if lengths[0] < rows.shape[1] else True
    for n in range(4):
        assert all(p < int(lengths[r]) for r, p in rec.top_where[n])


# -- labels and rules ------------------------------------------------------------------------------
def test_labels_come_from_the_world(bundled, labelled):
    data, _ = labelled
    i = data.words.index("Mary") if "Mary" in data.words else data.words.index(
        next(w for w in data.words if w in Lb.CATEGORY_LABELS["female name"]))
    assert data.labels["female name"][i] and data.labels["name"][i] and not data.labels["male name"][i]
    second = data.labels["second copy"]
    assert second.any() and data.labels["repeat"][second].all()
    assert data.labels["repeated word"][second].mean() > 0.9  # a second copy repeats its words
    # rows hold the tokens the labels describe
    for j in (0, 50, 200):
        assert bundled.to_string([int(data.rows[data.row[j], data.pos[j]])]).strip() == data.words[j]


def test_neuron_activations_are_the_models(bundled, labelled):
    data, _ = labelled
    acts = Lb.neuron_activations(bundled, data, 2)
    _, cache = bundled.run_with_cache(data.rows[:1], names=[act_name("post", 2)])
    n = int(data.lengths[0]) - 1
    torch.testing.assert_close(acts[:n], cache[act_name("post", 2)][0, 1: n + 1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rule,check", [
    ("female name", lambda d: d.labels["female name"]),
    ("colours", lambda d: d.labels["colour"]),
    ("Colour OR place", lambda d: d.labels["colour"] | d.labels["place"]),
    ("name and not sentence start", lambda d: d.labels["name"] & ~d.labels["sentence start"]),
    ("after article", lambda d: d.previous(d.labels["article"])),
    ("word red", lambda d: np.array([w.lower() == "red" for w in d.words])),
    ("(positive word or feeling) and story",
     lambda d: (d.labels["positive word"] | d.labels["feeling"]) & d.labels["story"]),
    ("positive word", lambda d: d.labels["positive word"]),
    ("not not animal sound", lambda d: d.labels["animal sound"]),
])
def test_rules_evaluate_as_written(labelled, rule, check):
    data, _ = labelled
    np.testing.assert_array_equal(R.evaluate(R.parse_rule(rule), data), check(data))


def test_after_does_not_cross_documents(labelled):
    data, _ = labelled
    starts = np.r_[True, data.row[1:] != data.row[:-1]]
    assert not R.evaluate(R.parse_rule("after not article"), data)[starts].any()


@pytest.mark.parametrize("bad,message", [
    ("", "Type a rule first"), ("   ", "Type a rule first"), ("colr", "Did you mean 'colour'"),
    ("banana", "Unknown label 'banana'"), ("name and", "ends too early"), ("(name", "never closed"),
    ("name)", "Unexpected ')'"), ("word", "needs the word"), ("name name", "Unexpected 'name'"),
    ("x" * 201, "keep it under 200"), (" or ".join(["name"] * 13), "more than 12 labels"),
    ("__import__('os')", "Unknown label"),
])
def test_bad_rules_say_what_to_fix(bad, message):
    with pytest.raises(R.RuleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        R.parse_rule(bad)


# -- explain, simulate, score ----------------------------------------------------------------------
def test_auroc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    x = rng.normal(size=3000).round(1)
    y = rng.random(3000) < 0.3
    assert S.auroc(x, y) == pytest.approx(roc_auc_score(y, x), abs=1e-12)
    assert np.isnan(S.auroc(x, np.zeros(3000, bool)))


def test_a_rule_built_from_the_neurons_own_labels_scores_one_and_a_random_rule_half(labelled):
    data, fresh = labelled
    rng = np.random.default_rng(0)

    def neuron(d):  # a synthetic neuron that fires on colours and places, noisy
        return (d.labels["colour"] | d.labels["place"]) * 2.0 + rng.normal(0, 0.3, d.n_tokens)
    own = S.score_rule("colour or place", fresh, neuron(fresh))
    assert own.auroc > 0.99 and own.correlation > 0.8 and own.verdict == "explains"
    random_rule = S.score_mask(neuron(fresh), rng.random(fresh.n_tokens) < 0.2, "random")
    assert abs(random_rule.auroc - 0.5) < 0.05 and random_rule.verdict == "no_better_than_chance"
    assert abs(own.baseline_auroc - 0.5) < 0.05
    best = S.suggest_rules(data, neuron(data), k=3)
    assert {s.rule for s in best[:2]} <= {"colour", "place", "colour or place", "not colour", "not place"}


def test_explain_score_on_a_real_bundled_neuron(bundled, labelled):
    """The best label for a real neuron, found on one sample, explains it on fresh sentences; a rule
    of random tokens does not."""
    data, fresh = labelled
    acts = Lb.neuron_activations(bundled, data, 0).numpy()
    fresh_acts = Lb.neuron_activations(bundled, fresh, 0).numpy()
    labels, table = S.label_aurocs(data, acts)
    neuron = int(np.nanargmax(np.nanmax(table, axis=0)))
    rule = S.suggest_rules(data, acts[:, neuron], k=1)[0].rule
    sc = S.score_rule(rule, fresh, fresh_acts[:, neuron])
    assert sc.auroc > 0.95, (neuron, rule, sc)
    rng = np.random.default_rng(1)
    random_rule = rng.random(fresh.n_tokens) < sc.coverage
    assert abs(S.score_mask(fresh_acts[:, neuron], random_rule).auroc - 0.5) < 0.07
    # the vectorised table agrees with the one-label scorer
    j = labels.index("name")
    assert table[j, neuron] == pytest.approx(S.auroc(acts[:, neuron], data.labels["name"]), abs=1e-9)


def test_score_verdicts_go_each_way():
    x = np.r_[np.zeros(50), np.ones(50)]
    assert S.score_mask(x, x > 0).verdict == "explains"
    assert S.score_mask(x, x == 0).verdict == "opposite"
    assert S.score_mask(x, np.r_[np.zeros(100, bool)]).verdict == "unscorable"
    mixed = np.r_[np.zeros(30, bool), np.ones(20, bool), np.zeros(35, bool), np.ones(15, bool)]
    assert S.score_mask(x, mixed).verdict in ("partly", "no_better_than_chance")


def test_candidate_rules_hold_the_best_label_in_order(labelled):
    data, _ = labelled
    acts = data.labels["digit"] * 3.0
    options = S.candidate_rules(data, acts, n=4, seed=0)
    assert "digit" in options and list(options) == sorted(options) and 2 <= len(options) <= 4


# -- gated MLPs ------------------------------------------------------------------------------------
def test_gate_times_up_is_the_neurons_output(tiny_model_dir):
    lm = tiny(tiny_model_dir, "llama")
    rows, lengths = lm.tokenize_batch(TEXT)
    gu = G.gate_up(lm, 1, 3, rows, lengths)
    assert gu.max_error < 1e-5
    assert gu.share.sum() == pytest.approx(1.0) and len(gu.gate) == int((lengths - 1).sum())
    with pytest.raises(ValueError, match="not gated"):
        G.gate_up(tiny(tiny_model_dir, "gpt2"), 0, 0, rows, lengths)


# -- knock-out -------------------------------------------------------------------------------------
def test_knocking_out_a_neuron_that_writes_nothing_changes_nothing(bundled):
    lm = bundled.copy()
    with torch.no_grad():
        Wt.mlp_modules(lm, 1)["out"].weight[5].zero_()  # GPT-2 Conv1D: row 5 is neuron 5's output
    texts = K.family_texts(lm, n_docs=4)
    ko = K.knock_out(lm, 1, 5, texts)
    np.testing.assert_allclose(ko.ablated, ko.clean, atol=1e-6)
    assert ko.matters == () and set(ko.families) == set(K.FAMILY_WORDS)


def test_knock_out_changes_the_loss_and_checks_its_input(bundled):
    texts = K.family_texts(bundled, n_docs=6)
    ko = K.knock_out(bundled, 0, 272, texts, mode="mean", mean=0.0)
    assert np.any(np.abs(ko.delta) > 0) and ko.mode == "mean"
    with pytest.raises(ValueError, match="does not exist"):
        K.knock_out(bundled, 0, bundled.cfg.d_mlp, texts)
    with pytest.raises(ValueError, match="mode"):
        K.knock_out(bundled, 0, 1, texts, mode="half")


def test_family_texts_for_a_hub_model(tiny_model_dir):
    lm = tiny(tiny_model_dir, "gpt_neox")
    texts = K.family_texts(lm, n_docs=3)
    assert [t.family for t in texts] == list(K.FAMILY_WORDS)
    assert all(t.tokens.shape[1] <= lm.cfg.n_ctx for t in texts)  # every row fits the context window
    ko = K.knock_out(lm, 0, 1, texts)
    assert np.all(np.isfinite(ko.clean)) and np.all(ko.n_tokens > 0)


def _ko(delta, clean=2.0) -> K.KnockOut:
    delta = np.asarray(delta, dtype=float)
    families = tuple(K.FAMILY_WORDS)[: len(delta)]
    return K.KnockOut(1, 7, "zero", 0.0, families, np.full(len(delta), clean), clean + delta,
                      np.full(len(delta), 100))


def test_knock_out_words_follow_the_sign_of_every_change():
    from ui.neurons.views import knockout_sentence

    m = K.MATTERS
    rise = _ko([0.2 * m, 3 * m, 0.0])  # one family needs it
    assert rise.matters == ("ioi",) and rise.helps == () and rise.largest == 1
    words = knockout_sentence(rise)
    assert f"raises the loss by at least {m:g} nats per token on: **IOI sentences**" in words
    assert f"(most on IOI sentences: {3 * m:+.4f})" in words and "lowers" not in words
    drop = _ko([0.2 * m, -3 * m, 0.5 * m])  # better without it on one family: not "less than on every family"
    assert drop.matters == () and drop.helps == ("ioi",) and drop.largest == 1
    words = knockout_sentence(drop)
    assert "changes the loss by less than" not in words
    assert f"raises the loss by less than {m:g} nats per token on every family" in words
    assert f"*lowers* it by at least {m:g} on: **IOI sentences** (most on IOI sentences: {-3 * m:+.4f})" \
        in words
    both = _ko([2 * m, -5 * m, 4 * m])
    words = knockout_sentence(both)
    assert both.matters == ("story", "facts") and both.largest == 1
    assert f"**stories, facts** (most on facts: {4 * m:+.4f})" in words  # the largest rise
    assert f"*lowers* the loss by at least {m:g} on: **IOI sentences**" in words
    small_drop = _ko([0.1 * m, -0.6 * m, 0.3 * m])  # the largest change is a drop, under the line
    words = knockout_sentence(small_drop)
    assert small_drop.largest == 1 and "either way" in words
    assert f"largest change {-0.6 * m:+.4f}, a drop, on IOI sentences" in words
    small_rise = _ko([0.1 * m, -0.2 * m, 0.7 * m])
    assert f"largest change {0.7 * m:+.4f}, a rise, on facts" in knockout_sentence(small_rise)
