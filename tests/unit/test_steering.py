"""Steering mechanics on tiny random models: coefficient 0 changes nothing, the hook adds exactly
c * v where it should (also with the KV cache), vectors are the mean differences they claim to be
in the stream after their layer, and steering never leaks into another thread or outlives its block."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.interp.steering import effect as E
from core.interp.steering import fluency as F
from core.interp.steering import targets as T
from core.interp.steering import vectors as S
from core.models import act_name, load_model
from core.models.generation import SamplingSettings
from core.models.hook_names import EMBEDDINGS, stream_hook

PAIRS = [("the cat is happy", "the cat is sad"), ("a dog is happy .", "a dog is sad ."),
         ("Mary ran home happy", "Mary ran home sad")]
TEXT = "the cat sat on the mat . Mary gave a red dog to John"


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


@pytest.fixture(scope="module")
def sv(lm):
    return S.mean_difference(lm, PAIRS, 1)


def _greedy(n_new, **kw):
    return SamplingSettings(max_new_tokens=n_new, temperature=0, stop_at_eos=False, **kw)


def _sampled(n_new, seed, **kw):
    return SamplingSettings(max_new_tokens=n_new, temperature=1.0, seed=seed, stop_at_eos=False, **kw)


def _big(sv, scale=20.0):
    """The same direction, long enough to change greedy choices of a random tiny model."""
    return S.SteeringVector(sv.vector / sv.vector.norm() * scale, sv.hook_name, sv.method, sv.label)


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "llama"])
def test_coefficient_zero_gives_exactly_the_unsteered_logits(tiny_model_dir, arch):
    model = load_model(str(tiny_model_dir(arch)))
    v = S.mean_difference(model, PAIRS, 1)
    tokens = model.to_tokens(TEXT)
    clean = model(tokens)
    with S.steer(model, v, 0.0):
        torch.testing.assert_close(model(tokens), clean, atol=0, rtol=0)
    with S.steer(model, v, 3.0):  # and a non-zero coefficient does change them
        assert (model(tokens) - clean).abs().max() > 1e-3
    rows = tokens.repeat(3, 1)
    with S.steer(model, v, torch.tensor([0.0, 2.0, 0.0])):  # per-row coefficients, zero rows exact
        batch = model(rows)
    torch.testing.assert_close(batch[0], clean[0], atol=0, rtol=0)
    torch.testing.assert_close(batch[2], clean[0], atol=0, rtol=0)
    assert (batch[1] - clean[0]).abs().max() > 1e-3


def test_hook_adds_c_times_v_from_the_start_position_on(lm, sv):
    tokens = lm.to_tokens(TEXT)  # [1, pos]
    name = act_name("resid_post", 1)
    assert sv.hook_name == name == stream_hook(1)  # "layer 1" is the stream after block 1
    _, clean = lm.run_with_cache(tokens, names=[name])
    with S.steer(lm, sv, 2.5, start_pos=4):
        _, steered = lm.run_with_cache(tokens, names=[name])
    delta = steered[name][0] - clean[name][0]  # [pos, d_model]
    assert torch.equal(delta[:4], torch.zeros_like(delta[:4]))
    torch.testing.assert_close(delta[4:], (2.5 * sv.vector).expand_as(delta[4:]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("start_pos", [0, 3, 14])
def test_kv_cached_steered_generation_equals_full_recompute(lm, sv, start_pos):
    """Greedy steering with the KV cache (hooks see one new position per step, via pos_offset) picks
    the same tokens as recomputing the whole steered sequence at every step."""
    big = _big(sv)
    prompt = lm.to_tokens("the cat sat on the mat .")  # 8 tokens; start 14 begins mid-generation
    gen = S.generate_steered(lm, prompt, big, 1.0, _greedy(12), start_pos=start_pos)
    tokens = prompt
    with S.steer(lm, big, 1.0, start_pos=start_pos):
        for _ in range(12):
            tokens = torch.cat([tokens, lm(tokens)[0, -1].argmax().view(1, 1)], dim=1)
    assert gen.tokens.tolist() == tokens[0].tolist()
    plain = lm.generate(prompt, max_new_tokens=12, temperature=0, stop_at_eos=False)
    assert gen.new_tokens.tolist() != plain.new_tokens.tolist()  # the steering did something


def test_sampled_generation_is_seeded_and_coefficient_zero_is_the_plain_text(lm, sv):
    prompt = lm.to_tokens("the cat")
    a = S.generate_steered(lm, prompt, _big(sv), 1.0, _sampled(15, 5))
    b = S.generate_steered(lm, prompt, _big(sv), 1.0, _sampled(15, 5))
    assert a.new_tokens.tolist() == b.new_tokens.tolist()
    zero = S.generate_steered(lm, prompt, _big(sv), 0.0, _sampled(15, 5))
    plain = lm.generate(prompt, max_new_tokens=15, temperature=1.0, seed=5, stop_at_eos=False)
    assert zero.new_tokens.tolist() == plain.new_tokens.tolist()


@pytest.mark.parametrize("position", ["diff", "last"])
def test_mean_difference_is_the_mean_of_the_pair_differences(lm, position):
    name = act_name("resid_post", 1)
    diffs = []
    for plus, minus in PAIRS:
        acts = []
        for text in (plus, minus):
            _, cache = lm.run_with_cache(lm.to_tokens(text), names=[name])
            acts.append(cache[name][0])  # [pos, d_model]
        tp, tm = lm.to_tokens(plus)[0], lm.to_tokens(minus)[0]
        k = int((tp[: len(tm)] == tm[: len(tp)]).long().cumprod(0).sum())
        if position == "diff":
            diffs.append(acts[0][k:].mean(0) - acts[1][k:].mean(0))
        else:
            diffs.append(acts[0][-1] - acts[1][-1])
    expected = torch.stack(diffs).mean(0)
    got = S.mean_difference(lm, PAIRS, 1, position=position)
    torch.testing.assert_close(got.vector, expected, atol=1e-5, rtol=1e-5)
    assert got.hook_name == name and got.n_pairs == 3 and got.method == "mean difference (CAA)"
    one = S.act_add(lm, *PAIRS[0], 1, position=position)
    torch.testing.assert_close(one.vector, diffs[0], atol=1e-5, rtol=1e-5)
    assert one.method == "one pair (ActAdd)"


def test_layer_l_is_the_stream_block_l_plus_1_reads(lm):
    """The lab's convention: a vector at layer L (blocks.L.hook_resid_post) is the same as one at
    blocks.(L+1).hook_resid_pre, and the embeddings (EMBEDDINGS) are blocks.0.hook_resid_pre; adding
    it at either name steers identically."""
    vs = S.contrast_vectors(lm, PAIRS, [EMBEDDINGS, 0, 1])
    assert vs[EMBEDDINGS].hook_name == act_name("resid_pre", 0)
    assert vs[0].hook_name == act_name("resid_post", 0)
    names = [act_name("resid_pre", 1), act_name("resid_post", 0)]
    _, cache = lm.run_with_cache(lm.tokenize_batch([p for p, _ in PAIRS])[0], names=names)
    torch.testing.assert_close(cache[names[0]], cache[names[1]], atol=0, rtol=0)
    as_pre = S.SteeringVector(vs[0].vector, act_name("resid_pre", 1), "same", "same")
    tokens = lm.to_tokens(TEXT)
    with S.steer(lm, vs[0], 2.0):
        post = lm(tokens)
    with S.steer(lm, as_pre, 2.0):
        pre = lm(tokens)
    torch.testing.assert_close(post, pre, atol=1e-6, rtol=0)


def test_contrast_vectors_refuse_pairs_with_nothing_to_contrast(lm):
    with pytest.raises(ValueError, match="nothing to contrast"):
        S.mean_difference(lm, [("the cat", "the cat")], 0)
    with pytest.raises(ValueError, match="at least one"):
        S.mean_difference(lm, [], 0)


def test_controls_have_the_same_norm_and_the_right_direction(lm, sv):
    r1, r2 = S.random_like(sv, seed=1), S.random_like(sv, seed=1)
    assert r1.norm == pytest.approx(sv.norm, rel=1e-5)
    assert torch.equal(r1.vector, r2.vector)
    cos = float(torch.nn.functional.cosine_similarity(r1.vector, sv.vector, dim=0))
    assert abs(cos) < 0.7
    torch.testing.assert_close(sv.opposite().vector, -sv.vector, atol=0, rtol=0)


def test_a_found_direction_is_scaled_to_the_streams_size(lm):
    name = act_name("resid_post", 0)
    direction = np.arange(lm.cfg.d_model, dtype=np.float32)
    v = S.from_direction(lm, direction, name, method="probe", label="test", reference_texts=[TEXT])
    norm = S.typical_norm(lm, name, [TEXT])
    assert v.norm == pytest.approx(S.DIRECTION_SCALE * norm, rel=1e-5) and v.hook_name == name
    cos = float(torch.nn.functional.cosine_similarity(v.vector, torch.as_tensor(direction), dim=0))
    assert cos == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="d_model"):
        S.from_direction(lm, direction[:5], name, method="probe", label="x", reference_texts=[TEXT])


def test_perplexity_is_exp_of_the_cross_entropy(lm):
    tokens = lm.to_tokens(TEXT)[0]
    logits = lm(tokens[None])[0]
    expected = torch.nn.functional.cross_entropy(logits[4:-1], tokens[5:]).exp()
    assert S.perplexity(lm, tokens, 5) == pytest.approx(float(expected), rel=1e-5)
    rows = tokens.repeat(2, 1)
    np.testing.assert_allclose(E.batch_perplexity(lm, rows, 5), [float(expected)] * 2, rtol=1e-5)


def test_targets_from_pairs_take_the_first_differing_words(lm):
    t = T.targets_from_pairs(lm, PAIRS)
    happy, sad = (lm.to_tokens(w, prepend_bos=False)[0, 0].item() for w in ("happy", "sad"))
    assert t.plus_ids == (happy,) and t.minus_ids == (sad,)
    assert t.plus_words == ("happy",) and t.minus_words == ("sad",)
    assert t.prompts == ("the cat is", "a dog is", "Mary ran home")
    with pytest.raises(ValueError, match="first differing word"):
        T.targets_from_pairs(lm, [("the cat", "the cat is")])


def test_next_token_effect_matches_a_plain_forward_pass(lm, sv):
    """The batched measurement (all coefficients in one batch, logits only at each prompt's last
    token) equals the probabilities read off ordinary forward passes, steered or not."""
    t = T.targets_from_pairs(lm, PAIRS)
    p_plus, p_minus, diff = E.next_token_effect(lm, sv, t, [0.0, 3.0], start_pos=2)
    for i, c in enumerate((0.0, 3.0)):
        want_plus, want_minus, want_diff = [], [], []
        for prompt in t.prompts:
            tokens = lm.to_tokens(prompt)
            with S.steer(lm, sv, c, start_pos=min(2, tokens.shape[1] - 1)):
                logits = lm(tokens)[0, -1]
            probs = logits.softmax(-1)
            want_plus.append(float(probs[list(t.plus_ids)].sum()))
            want_minus.append(float(probs[list(t.minus_ids)].sum()))
            want_diff.append(float(logits[list(t.plus_ids)].mean() - logits[list(t.minus_ids)].mean()))
        assert p_plus[i] == pytest.approx(np.mean(want_plus), abs=1e-5)
        assert p_minus[i] == pytest.approx(np.mean(want_minus), abs=1e-5)
        assert diff[i] == pytest.approx(np.mean(want_diff), abs=1e-4)
    assert diff[1] > diff[0]  # the vector built from these pairs pushes toward " happy"


def test_effect_curves_and_controls(lm, sv):
    t = T.targets_from_pairs(lm, PAIRS)
    coefs = (-2.0, 0.0, 2.0)
    settings = E.CurveSettings(coefs, sampling=_sampled(6, 0))
    curves = E.effect_curves(lm, sv, t, settings, fluency_tokens=lm.to_tokens("the cat"))
    assert [c.control for c in curves] == list(E.CONTROLS)
    vec, opp, rnd = curves
    np.testing.assert_allclose(opp.logit_diff, vec.logit_diff[::-1], atol=1e-4)  # the mirror image
    assert vec.logit_diff[0] < vec.logit_diff[1] < vec.logit_diff[2]
    assert vec.logit_diff[1] == rnd.logit_diff[1]  # coefficient 0: all three are the plain model
    assert np.all(np.isfinite(vec.perplexity)) and np.all(vec.perplexity > 1)
    # coefficient 0 of the fluency texts is the unsteered text: the same perplexity for all three
    assert vec.perplexity[1] == opp.perplexity[1] == rnd.perplexity[1]
    sweep = E.layer_sweep(lm, PAIRS, t, settings)
    assert sweep.layers.tolist() == [EMBEDDINGS, 0, 1]  # every stream point
    assert sweep.logit_diff.shape == (lm.cfg.n_layers + 1, 3)
    np.testing.assert_allclose(sweep.logit_diff[2], vec.logit_diff, atol=1e-5)  # layer 1


@pytest.mark.parametrize("settings", [_greedy(8), _sampled(8, 4)])
def test_batched_samples_at_coefficient_zero_are_the_plain_text(lm, sv, settings):
    """Greedy or sampled with the seed: the row with coefficient 0 is the unsteered text, token for
    token (every row of the batch uses the same random numbers)."""
    prompt = lm.to_tokens("the cat")
    rows = E.steered_samples(lm, _big(sv), prompt, [0.0, 1.0], settings).tokens
    plain = lm.generate(prompt, settings=settings)
    assert rows[0].tolist() == plain.tokens.tolist()
    assert rows[1].tolist() != rows[0].tolist()


# -- safety: a shared model, many threads ------------------------------------------------------------
def test_steered_generation_never_reaches_a_concurrent_clean_forward_pass(lm, sv):
    tokens = lm.to_tokens(TEXT)
    reference = lm(tokens)
    plain = lm.generate("the cat", max_new_tokens=10, temperature=0, stop_at_eos=False)
    stop = threading.Event()
    clean_ok, steered_texts, errors = [], [], []

    def steer_loop():
        try:
            while not stop.is_set():
                gen = S.generate_steered(lm, lm.to_tokens("the cat"), _big(sv), 1.0, _greedy(10))
                steered_texts.append(gen.new_tokens.tolist())
        except Exception as err:  # surfaced below
            errors.append(err)

    def clean_loop():
        try:
            for _ in range(100):
                clean_ok.append(bool(torch.equal(lm(tokens), reference)))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=steer_loop), threading.Thread(target=clean_loop)]
    for th in threads:
        th.start()
    threads[1].join()
    stop.set()
    threads[0].join()
    assert not errors
    assert len(clean_ok) == 100 and all(clean_ok)
    assert steered_texts and all(t != plain.new_tokens.tolist() for t in steered_texts)
    # and once generation is over, the hook is gone
    torch.testing.assert_close(lm(tokens), reference, atol=0, rtol=0)
    again = lm.generate("the cat", max_new_tokens=10, temperature=0, stop_at_eos=False)
    assert again.new_tokens.tolist() == plain.new_tokens.tolist()


def test_the_hook_is_gone_after_an_error_during_steered_generation(lm, sv):
    tokens = lm.to_tokens(TEXT)
    reference = lm(tokens)
    wrong = S.SteeringVector(torch.ones(lm.cfg.d_model + 1), sv.hook_name, "broken", "wrong size")
    with pytest.raises(RuntimeError):
        S.generate_steered(lm, lm.to_tokens("the cat"), wrong, 1.0, _sampled(5, 0))
    torch.testing.assert_close(lm(tokens), reference, atol=0, rtol=0)
    with pytest.raises(KeyError, match="stop"):
        with S.steer(lm, _big(sv), 1.0):
            assert not torch.equal(lm(tokens), reference)
            raise KeyError("stop")
    torch.testing.assert_close(lm(tokens), reference, atol=0, rtol=0)


@pytest.mark.parametrize("start_pos", [0, 4])
def test_batched_kv_samples_equal_one_at_a_time_generation(lm, sv, start_pos):
    """The sweep's batched sampler (one row per coefficient, KV cache) writes, row by row, what
    generate_steered writes for that coefficient alone (greedy, and sampled with one seed)."""
    prompt = lm.to_tokens("the cat sat")
    coefs = [-1.0, 0.5, 1.0]
    for settings in (_greedy(8), _sampled(8, 2)):
        rows = E.steered_samples(lm, _big(sv), prompt, coefs, settings, start_pos=start_pos).tokens
        for row, c in zip(rows, coefs, strict=True):
            one = S.generate_steered(lm, prompt, _big(sv), c, settings, start_pos=start_pos)
            assert row.tolist() == one.tokens.tolist()


@pytest.mark.parametrize("arch", ["gpt_neo", "gpt_neox", "gpt_neox_serial", "llama"])
def test_measurements_work_on_every_family(tiny_model_dir, arch):
    """The batched paths (logits only at each prompt's last token; the KV-cached sampler) agree with
    plain forward passes and plain generation on every architecture family."""
    model = load_model(str(tiny_model_dir(arch)))
    v, t = S.mean_difference(model, PAIRS, 1), T.targets_from_pairs(model, PAIRS)
    p_plus, _, _ = E.next_token_effect(model, v, t, [0.0])
    probs = [model(model.to_tokens(p))[0, -1].softmax(-1)[list(t.plus_ids)].sum() for p in t.prompts]
    assert p_plus[0] == pytest.approx(float(torch.stack(probs).mean()), abs=1e-5)
    rows = E.steered_samples(model, v, model.to_tokens("the cat"), [0.0], _greedy(6)).tokens
    plain = model.generate("the cat", max_new_tokens=6, temperature=0, stop_at_eos=False)
    assert rows[0].tolist() == plain.tokens.tolist()


# -- texts longer than the context window ------------------------------------------------------------
def _long(n_words: int, swap: int | None = None, word: str = "dog") -> str:
    """n_words words of a sentence over the tiny vocabulary, word number `swap` replaced."""
    words = ("the cat sat on the mat and " * 10).split()[:n_words]
    if swap is not None:
        words[swap] = word
    return " ".join(words)


def test_pairs_longer_than_the_context_window_are_read_inside_it(lm):
    """40-word pairs on a model with n_ctx 32: both sides are cut to 32 tokens, and the vector is
    the mean difference of the cut texts from the first differing token on."""
    assert lm.cfg.n_ctx == 32
    plus, minus = _long(40, 5, "happy"), _long(40, 5, "sad")
    got = S.mean_difference(lm, [(plus, minus)], 1)
    name = act_name("resid_post", 1)
    acts = []
    for text in (plus, minus):
        tokens = lm.to_tokens(text)
        assert tokens.shape == (1, 32)
        _, cache = lm.run_with_cache(tokens, names=[name])
        acts.append(cache[name][0, 6:].mean(0))  # BOS + 5 shared words, then "happy" / "sad"
    torch.testing.assert_close(got.vector, acts[0] - acts[1], atol=1e-5, rtol=1e-5)
    last = S.mean_difference(lm, [(plus, minus)], 1, position="last")
    assert torch.isfinite(last.vector).all() and last.norm > 0
    t = T.targets_from_pairs(lm, [(plus, minus)])
    assert t.plus_words == ("happy",) and t.minus_words == ("sad",)
    assert t.prompts == (_long(5),)
    p_plus, p_minus, diff = E.next_token_effect(lm, got, t, [0.0, 2.0], start_pos=31)
    assert np.all(np.isfinite(diff)) and np.all((p_plus > 0) & (p_minus > 0))


@pytest.mark.parametrize("position", ["diff", "last"])
def test_pairs_that_differ_only_after_the_cut_are_refused(lm, position):
    """Differing at word 35 of 40, the pair is the same 32 tokens for the model: no vector (not a
    silent zero vector) and no words to measure, and the message names the context window."""
    pair = (_long(40, 35, "happy"), _long(40, 35, "sad"))
    with pytest.raises(ValueError, match="nothing to contrast.*context window of 32 tokens"):
        S.mean_difference(lm, [pair], 1, position=position)
    with pytest.raises(ValueError, match="first differing word.*context window of 32 tokens"):
        T.targets_from_pairs(lm, [pair])
    with pytest.raises(ValueError, match=r"nothing to contrast \(the model reads the same tokens\)"):
        S.mean_difference(lm, [("the cat", "the cat")], 1, position=position)


def test_measured_words_are_single_known_tokens(lm):
    t = T._targets(lm, "+", "-", ["cat", " zebra", "cat sat", "dog"], ["mat"], ["the"])
    assert t.plus_words == ("cat", "dog") and t.minus_words == ("mat",)
    assert t.plus_ids == tuple(lm.to_tokens(w, prepend_bos=False)[0, 0].item() for w in ("cat", "dog"))
    with pytest.raises(ValueError, match="No single-token words"):
        T._targets(lm, "+", "-", ["zebra"], ["mat"], ["the"])


def test_continuation_text_is_escaped_with_the_shared_escaper():
    from ui.common.page import escape_markdown
    from ui.steering.views import md_escape

    text = "a *b* _c_ [d](e) $x$ :red[f]\nnext line"
    assert md_escape(text) == escape_markdown("a *b* _c_ [d](e) $x$ :red[f]") + "  \n" + "next line"
    assert "*" not in md_escape(text).replace("\\*", "")


# -- the page's side-by-side texts -------------------------------------------------------------------
def test_compare_texts_pairs_each_seed_with_and_without_the_push(lm, sv):
    """Each pair shares a seed: the unsteered row is plain generation with that seed, the steered
    row is generate_steered with it; perplexities are those of the unsteered model."""
    prompt = lm.to_tokens("the cat sat")
    settings = _sampled(10, 7)
    out = F.compare_texts(lm, _big(sv), prompt, 1.0, settings, n_samples=3)
    assert out.seeds == (7, 8, 9) and not out.greedy
    for i, seed in enumerate(out.seeds):
        s = _sampled(10, seed)
        plain = lm.generate(prompt, settings=s)
        steered = S.generate_steered(lm, prompt, _big(sv), 1.0, s)
        assert list(out.plain[i]) == plain.new_tokens.tolist()
        assert list(out.steered[i]) == steered.new_tokens.tolist()
        assert out.plain_perplexity[i] == pytest.approx(S.perplexity(lm, plain.tokens, 4), rel=1e-5)
        assert out.steered_perplexity[i] == pytest.approx(S.perplexity(lm, steered.tokens, 4), rel=1e-5)
    logs = np.log(out.steered_perplexity).mean() - np.log(out.plain_perplexity).mean()
    assert out.perplexity_ratio == pytest.approx(float(np.exp(logs)), rel=1e-9)
    assert out.first_difference is not None and out.plain[0][: out.first_difference] == \
        out.steered[0][: out.first_difference]


def test_compare_texts_at_coefficient_zero_are_identical_and_greedy_uses_one_seed(lm, sv):
    prompt = lm.to_tokens("the cat sat")
    zero = F.compare_texts(lm, _big(sv), prompt, 0.0, _sampled(10, 1))
    assert zero.plain == zero.steered and zero.first_difference is None
    assert zero.perplexity_ratio == pytest.approx(1.0, abs=1e-12)
    greedy = F.compare_texts(lm, _big(sv), prompt, 1.0, _greedy(10))
    assert greedy.greedy and greedy.seeds == (0,) and len(greedy.plain) == 1


def test_point_effect_measures_the_vector_and_random_pushes(lm, sv):
    t = T.targets_from_pairs(lm, PAIRS)
    point = E.point_effect(lm, sv, t, 2.0, random_seeds=(0, 1))
    p_plus, p_minus, diff = E.next_token_effect(lm, sv, t, [0.0, 2.0])
    assert point.vector.p_plus == pytest.approx(tuple(p_plus)) and point.coefficient == 2.0
    assert point.vector.balance_shift == pytest.approx(
        float((p_plus[1] - p_minus[1]) - (p_plus[0] - p_minus[0])), abs=1e-7)
    r_plus, r_minus, _ = E.next_token_effect(lm, S.random_like(sv, 1), t, [0.0, 2.0])
    assert point.randoms[1].p_minus == pytest.approx(tuple(r_minus))
    assert point.largest_random_shift == max(abs(r.balance_shift) for r in point.randoms)
    assert E.count_words([t.plus_ids[0], t.minus_ids[0], t.plus_ids[0], 99], t) == (2, 1)
