"""The probes page's verdicts (core.interp.probes.verdicts) on constructed results that go each way,
and the sentences the page words from them (ui.probes.words)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from core.interp.probes import verdicts as V
from core.interp.probes.causal import CausalResult, gender_behaviour
from core.interp.probes.probe import ProbeReport
from core.models.hook_names import EMBEDDINGS
from ui.probes import words

CONDITIONS = ("clean", "probe weights removed", "class-mean difference removed",
              "random direction removed")
GENDER = gender_behaviour(2)


def _result(means, flipped, right=(1.0, 1.0, 1.0, 1.0)) -> CausalResult:
    return CausalResult("blocks.3.hook_resid_post", CONDITIONS, np.array(means, dtype=float),
                        np.zeros(4), np.array(right, dtype=float), np.array(flipped, dtype=float), 1)


def _report(test, control=None, chance=0.5, target="class") -> ProbeReport:
    n = len(test)
    test = np.array(test, dtype=float)
    control = np.full(n, chance) if control is None else np.array(control, dtype=float)
    seen = test.copy()
    zeros = np.zeros(n)
    return ProbeReport(
        layers=(EMBEDDINGS, *range(n - 1)), hook_names=tuple(f"h{i}" for i in range(n)), target=target,
        metric="accuracy" if target == "class" else "R²", classes=("a", "b"), test_score=test,
        train_score=test, seen_score=seen, control_score=control, selectivity=seen - control,
        cv_mean=zeros, cv_std=zeros, chance=chance, confusion=None, y_test=np.zeros(2),
        predictions=np.zeros((n, 2)), cosine=np.eye(n), directions=np.zeros((n, 1, 3)),
        mean_diff=np.zeros((n, 1, 3)), n_train=10, n_test=2)


# -- readability -----------------------------------------------------------------------------------
def test_readable_at_the_first_layer_reaching_the_threshold():
    r = _report([0.5, 0.6, V.READABLE_AT, 0.99])
    v = V.readability(r)
    assert v.found and v.first == 2 and v.best == 3 and v.before == pytest.approx(0.6)
    assert V.detail_index(r) == 2
    text = words.readable_sentence(r, v)
    assert "readable at **layer 1**" in text and "(layer 0: 0.60)" in text


def test_not_readable_anywhere_names_the_best_layer():
    r = _report([0.5, 0.7, V.READABLE_AT - 0.01, 0.6])
    v = V.readability(r)
    assert not v.found and v.best == 2 and V.detail_index(r) == 2
    assert words.readable_sentence(r, v).startswith("No layer reaches 0.90 held-out accuracy; the best "
                                                     "is **layer 1** with 0.89.")


def test_readable_at_the_embeddings_has_no_layer_before():
    r = _report([0.95, 0.97])
    v = V.readability(r)
    assert v.first == 0 and v.before is None
    assert "readable at **the embeddings**" in words.readable_sentence(r, v)


@pytest.mark.parametrize(("control", "memorisable"), [
    (0.5 + V.MEMORISE_MARGIN + 0.01, True), (0.5 + V.MEMORISE_MARGIN - 0.01, False)])
def test_a_high_control_means_the_layer_carries_word_identity(control, memorisable):
    r = _report([0.5, 0.95], control=[0.5, control])
    v = V.readability(r)
    assert v.memorisable is memorisable
    assert ("could memorise" in words.readable_sentence(r, v)) is memorisable


def test_a_numeric_target_never_counts_as_memorisable():
    r = _report([0.2, 0.95], control=[0.9, 0.9], chance=0.0, target="numeric")
    assert not V.readability(r).memorisable


# -- the causal check ------------------------------------------------------------------------------
@pytest.mark.parametrize(("means", "flipped", "use", "named"), [
    # flips 60% of choices, a random direction none: used to choose
    ([10.0, -2.0, 9.0, 9.8], [0.0, 0.6, 0.0, 0.0], "chooses", "probe weights"),
    # no flips, but half the effect gone with the class-mean direction: used, not alone
    ([10.0, 8.5, 5.0, 10.0], [0.0, 0.0, 0.0, 0.0], "contributes", "class-mean difference"),
    # no flips, as little lost as with a random direction: read elsewhere
    ([10.0, 9.0, 9.5, 9.2], [0.0, 0.0, 0.0, 0.0], "elsewhere", "probe weights"),
])
def test_verdict_levels(means, flipped, use, named):
    v = V.causal_verdict(_result(means, flipped))
    assert v.use == use and v.best.what == named


def test_flips_just_under_the_margin_are_not_enough():
    at = V.causal_verdict(_result([10.0, 9.0, 9.9, 9.9], [0.0, V.FLIP_MARGIN + 0.05, 0.0, 0.05]))
    under = V.causal_verdict(_result([10.0, 9.0, 9.9, 9.9], [0.0, V.FLIP_MARGIN + 0.04, 0.0, 0.05]))
    assert at.use == "chooses" and under.use == "elsewhere"


def test_a_random_direction_that_hurts_as_much_is_no_evidence():
    v = V.causal_verdict(_result([10.0, 6.0, 9.0, 6.5], [0.0, 0.0, 0.0, 0.0]))
    assert v.use == "elsewhere"  # 40% gone, but 35% with a random direction


@pytest.mark.parametrize(("means", "right"), [
    ([2.0, 1.0, 1.0, 2.0], (V.BEHAVIOUR_AT - 0.05, 0.5, 0.5, 0.7)),  # the model rarely chooses right
    ([-1.0, -3.0, -3.0, -1.0], (0.9, 0.2, 0.2, 0.9)),  # on average it prefers the wrong side
])
def test_without_the_behaviour_the_check_says_nothing(means, right):
    v = V.causal_verdict(_result(means, [0.0, 0.6, 0.6, 0.0], right))
    assert v.use == "no behaviour"
    text = words.causal_summary(v, GENDER, 3)
    assert "too little behaviour" in text and "uses" not in text


@pytest.mark.parametrize(("after", "change"), [
    (8.13, "unchanged"), (8.12 * (1 - V.UNCHANGED) - 0.01, "weakened"),
    (8.12 * (1 + V.UNCHANGED) + 0.01, "strengthened")])
def test_a_removal_moves_the_effect_one_way_or_not_at_all(after, change):
    v = V.causal_verdict(_result([8.12, after, 8.12, 8.12], [0.0, 0.0, 0.0, 0.0]))
    probe = next(m for m in v.removals if m.what == "probe weights")
    assert probe.change == change


def test_the_sentences_never_say_minus_zero_percent_gone():
    """The audit's "8.12 -> 8.13 (-0% of the effect gone)"."""
    v = V.causal_verdict(_result([8.12, 8.13, 6.0, 8.6], [0.0, 0.0, 0.0, 0.0]))
    text = words.causal_sentence(v, GENDER, 3, 1)
    assert "8.12 → 8.13 (unchanged: less than 5% either way)" in text
    assert "8.12 → 6.00 (26% of the effect gone)" in text
    assert "8.12 → 8.60 (the effect grew by 6%)" in text
    assert "-0%" not in text and "right side wins" not in text
    assert text.startswith("With nothing removed, at layer 3 the model prefers the right pronoun on 100%")


@pytest.mark.parametrize(("means", "flipped", "phrase"), [
    ([10.0, -2.0, 9.0, 9.8], [0.0, 0.6, 0.0, 0.0], "so the model **uses** this direction to choose"),
    ([10.0, 8.5, 5.0, 10.0], [0.0, 0.0, 0.0, 0.0], "though not alone: 50% of the effect"),
    ([10.0, 9.0, 9.5, 9.2], [0.0, 0.0, 0.0, 0.0], "does **not** rely"),
])
def test_the_summary_follows_the_verdict(means, flipped, phrase):
    v = V.causal_verdict(_result(means, flipped))
    text = words.causal_summary(v, GENDER, EMBEDDINGS)
    assert phrase in text and text.startswith("At the embeddings, removing the **")


def test_the_lesson_states_the_thresholds_the_code_uses():
    doc = inspect.getdoc(V)
    for name in ("READABLE_AT", "MEMORISE_MARGIN", "BEHAVIOUR_AT", "FLIP_MARGIN", "EFFECT_SHARE",
                 "EFFECT_MARGIN", "UNCHANGED"):
        assert f"{name} ({getattr(V, name):g})" in doc, name


# -- the answer keys' claims, measured ---------------------------------------------------------------
def _seen(r: ProbeReport, seen, control) -> ProbeReport:
    from dataclasses import replace

    seen, control = np.array(seen, dtype=float), np.array(control, dtype=float)
    return replace(r, seen_score=seen, control_score=control, selectivity=seen - control)


def test_the_control_is_called_just_as_learnable_only_when_it_is():
    r = _seen(_report([0.95, 0.97]), seen=[1.0, 1.0], control=[1.0 - V.AS_LEARNABLE / 2, 0.9])
    v = V.readability(r)
    assert v.as_learnable is True and v.seen == pytest.approx(1.0)
    text = words.control_sentence(r, v)
    assert text.startswith("At the embeddings, the control task (each word type gets a random label) "
                           "scores 0.95 against 1.00 on seen items (selectivity 0.05)")
    assert "just as learnable" in text and "more learnable" not in text
    apart = _seen(_report([0.95, 0.97]), seen=[1.0, 1.0], control=[1.0 - V.AS_LEARNABLE - 0.01, 0.5])
    v = V.readability(apart)
    assert v.as_learnable is False
    text = words.control_sentence(apart, v)
    assert "the real labels are more learnable than random ones" in text and "just as" not in text
    none = _seen(_report([0.95, 0.97]), seen=[1.0, 1.0], control=[np.nan, np.nan])
    v = V.readability(none)
    assert v.as_learnable is None and "no control score" in words.control_sentence(none, v)


@pytest.mark.parametrize(("scores", "trend", "said"), [
    ([0.95, 0.9, 0.6], "falls", "falls from 0.95 at the embeddings to 0.60 at layer 1: later layers keep"),
    ([0.6, 0.9, 0.95], "rises", "rises from 0.60 at the embeddings to 0.95 at layer 1: later layers make"),
    ([0.95, 0.5, 0.95 - V.SCORE_MOVES / 2], "holds", "stays within 0.05 from 0.95"),
])
def test_the_score_trend_from_the_first_layer_to_the_last_goes_each_way(scores, trend, said):
    r = _report(scores, chance=0.0, target="numeric")
    t = V.score_trend(r)
    assert t.trend == trend and said in words.trend_sentence(r, t)
    assert "mix it with content" not in words.trend_sentence(r, t)


def test_the_answer_key_measures_what_it_used_to_assert():
    from ui.probes.views import GROUND_TRUTH, measured_key

    assert "just as learnable" not in GROUND_TRUTH["colour"] and "mix it" not in GROUND_TRUTH["position"]
    r = _seen(_report([0.95, 0.97]), seen=[1.0, 1.0], control=[0.5, 0.5])
    assert "more learnable than random ones" in measured_key(r, "colour")
    assert "later layers keep less" in measured_key(_report([0.95, 0.5]), "position")
    assert measured_key(r, "gender") == ""
