"""Ground truth on the bundled model: the sentiment vector steers toward positive words, monotonically
over a small range of coefficients, a random vector of the same norm does not do the same, and the
page's defaults are a setting where the verdict says it steers with fluent text (while the old
default, a harder push one layer earlier, is called word salad, and the last layer not specific)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.steering import effect as E
from core.interp.steering import fluency as F
from core.interp.steering import targets as T
from core.interp.steering import vectors as S
from core.interp.steering import verdict as V
from core.models import load_model
from core.models.generation import SamplingSettings
from core.models.loading import BUNDLED_DIR
from ui.steering.controls import BUNDLED_DEFAULT_LAYER, DEFAULT_COEFFICIENT

pytestmark = pytest.mark.skipif(
    not (BUNDLED_DIR / "model.safetensors").is_file(),
    reason="the bundled checkpoint is not built yet (python -m core.bundled.train)")

LAYER = BUNDLED_DEFAULT_LAYER  # the page's default: the stream after block 2
SMALL = [0.0, 1.0, 2.0, 3.0, 4.0]
PROMPT = "One day, Mary went to the park. She was"
PAGE_TEXT = SamplingSettings(max_new_tokens=40, temperature=1.0, seed=0, stop_at_eos=False)


@pytest.fixture(scope="module")
def lm():
    return load_model()


@pytest.fixture(scope="module")
def sentiment(lm):
    return S.mean_difference(lm, T.bundled_pairs("sentiment"), LAYER), T.bundled_targets(lm, "sentiment")


def test_the_sentiment_effect_is_monotonic_in_the_coefficient(lm, sentiment):
    """Over a small range the logit difference (positive minus negative words) rises with the
    coefficient and the mass on negative words falls; negative coefficients do the opposite."""
    sv, targets = sentiment
    _, p_minus, diff = E.next_token_effect(lm, sv, targets, SMALL)
    assert np.all(np.diff(diff) > 0), diff
    assert np.all(np.diff(p_minus) < 0), p_minus
    p_plus, _, diff = E.next_token_effect(lm, sv, targets, [-c for c in SMALL])
    assert np.all(np.diff(diff) < 0), diff


def test_steering_toward_positive_raises_positive_words_and_lowers_negative_ones(lm, sentiment):
    sv, targets = sentiment
    point = E.point_effect(lm, sv, targets, DEFAULT_COEFFICIENT)
    assert point.vector.p_plus[1] > point.vector.p_plus[0] + 0.05, point.vector
    assert point.vector.p_minus[1] < point.vector.p_minus[0] - 0.05, point.vector
    # random directions of the same norm move the +/- balance far less than the vector
    assert point.largest_random_shift < 0.25 * point.vector.balance_shift, point


def test_steered_stories_use_more_positive_words(lm, sentiment):
    """Over several seeds, 40-token continuations steered toward positive contain more positive and
    fewer negative words than the unsteered ones from the same seeds (and the same random numbers)."""
    sv, targets = sentiment
    prompt = lm.to_tokens(PROMPT)

    def balance(coefficient):
        total = 0
        for seed in range(8):
            settings = SamplingSettings(max_new_tokens=40, seed=seed, stop_at_eos=False)
            n_plus, n_minus = E.count_words(S.generate_steered(lm, prompt, sv, coefficient, settings)
                                            .new_tokens.tolist(), targets)
            total += n_plus - n_minus
        return total

    assert balance(DEFAULT_COEFFICIENT) > balance(0.0) > balance(-DEFAULT_COEFFICIENT)


def _page_verdict(lm, layer: int, coefficient: float) -> V.SteeringVerdict:
    """What the page computes at its defaults (prompt, seed 0, 40 tokens, temperature 1)."""
    sv = S.mean_difference(lm, T.bundled_pairs("sentiment"), layer)
    targets = T.bundled_targets(lm, "sentiment")
    texts = F.compare_texts(lm, sv, lm.to_tokens(PROMPT), coefficient, PAGE_TEXT)
    return V.verdict(V.SteeringOutcome(E.point_effect(lm, sv, targets, coefficient), texts, targets))


def test_the_page_defaults_steer_with_fluent_text(lm):
    v = _page_verdict(lm, LAYER, DEFAULT_COEFFICIENT)
    assert v.outcome is V.Outcome.STEERS, v
    assert v.shift > 0.3 and v.perplexity_ratio < 1.5, v


def test_the_old_default_push_is_word_salad_and_the_last_layer_is_not_specific(lm):
    """The old default (coefficient 4 at blocks.2.hook_resid_pre = layer 1) moved the concept but
    wrecked the text; after the last layer a random push moves the words about as much."""
    salad = _page_verdict(lm, 1, 4.0)
    assert salad.outcome is V.Outcome.SALAD and salad.perplexity_ratio > 3, salad
    last = _page_verdict(lm, lm.cfg.n_layers - 1, 4.0)
    assert last.outcome is V.Outcome.NOT_SPECIFIC, last


def test_a_directions_own_class_is_on_the_plus_side(lm):
    male = T.bundled_targets(lm, "gender", toward="male")
    assert male.plus_name == "male pronouns" and male.minus_name == "female pronouns"
    assert male.plus_ids == T.bundled_targets(lm, "gender").minus_ids
    green = T.bundled_targets(lm, "colour", toward="green")
    assert green.plus_words == (" green",) and len(green.minus_words) == len(T.concept_classes("colour")) - 1
    assert " red" in green.minus_words and green.minus_name == "other colours"
    with pytest.raises(ValueError, match="no class"):
        T.bundled_targets(lm, "colour", toward="happy")


DIGITS = " ".join(str(i % 10) for i in range(140))  # 279 characters, 140 tokens: past n_ctx = 128


def test_a_279_character_pair_of_digits_is_cut_to_the_context_window(lm):
    """This pair once crashed the page with an IndexError (positions past the context window)."""
    assert len(DIGITS) == 279 and lm.cfg.n_ctx == 128
    plus, minus = DIGITS, DIGITS[:100] + "7" + DIGITS[101:]  # digit 50 (a 0) becomes a 7
    sv = S.mean_difference(lm, [(plus, minus)], LAYER)
    assert torch.isfinite(sv.vector).all() and sv.norm > 0
    targets = T.targets_from_pairs(lm, [(plus, minus)])
    assert targets.plus_words == (" 0",) and targets.minus_words == (" 7",)
    assert targets.prompts == (DIGITS[:99],)
    p_plus, p_minus, diff = E.next_token_effect(lm, sv, targets, [0.0, 4.0], start_pos=127)
    assert np.all(np.isfinite(diff)) and p_plus[0] > p_minus[0]  # the sequence says " 0" comes next
    assert S.typical_norm(lm, sv.hook_name, [plus, minus]) > 0
    late = DIGITS[:-1] + "0"  # differs only in the last digit, long after the cut
    with pytest.raises(ValueError, match="context window of 128 tokens"):
        S.mean_difference(lm, [(plus, late)], LAYER)
    with pytest.raises(ValueError, match="context window of 128 tokens"):
        T.targets_from_pairs(lm, [(plus, late)])
