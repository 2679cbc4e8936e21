"""Ground truth on the bundled model: the sentiment vector steers toward positive words, monotonically
over a small range of coefficients, and a random vector of the same norm does not do the same."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interp.steering import effect as E
from core.interp.steering import vectors as S
from core.models import load_model
from core.models.loading import BUNDLED_DIR

pytestmark = pytest.mark.skipif(
    not (BUNDLED_DIR / "model.safetensors").is_file(),
    reason="the bundled checkpoint is not built yet (python -m core.bundled.train)")

LAYER = 2  # the page's default layer
SMALL = [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.fixture(scope="module")
def lm():
    return load_model()


@pytest.fixture(scope="module")
def sentiment(lm):
    return S.mean_difference(lm, E.bundled_pairs("sentiment"), LAYER), E.bundled_targets(lm, "sentiment")


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
    p_plus, p_minus, _ = E.next_token_effect(lm, sv, targets, [0.0, 4.0])
    assert p_plus[1] > p_plus[0] + 0.05, p_plus
    assert p_minus[1] < p_minus[0] - 0.05, p_minus
    r_plus, r_minus, r_diff = E.next_token_effect(lm, S.random_like(sv), targets, [0.0, 4.0])
    _, _, diff = E.next_token_effect(lm, sv, targets, [0.0, 4.0])
    # the random control of the same norm moves the +/- balance far less than the vector
    assert abs(r_diff[1] - r_diff[0]) < 0.25 * abs(diff[1] - diff[0]), (r_diff, diff)


def test_steered_stories_use_more_positive_words(lm, sentiment):
    """Over several seeds, 40-token continuations steered toward positive contain more positive and
    fewer negative words than the unsteered ones from the same seeds."""
    sv, targets = sentiment
    prompt = lm.to_tokens("One day, Mary went to the park. She was")
    plus, minus = torch.tensor(targets.plus_ids), torch.tensor(targets.minus_ids)

    def balance(coefficient):
        total = 0
        for seed in range(8):
            new = S.generate_steered(lm, prompt, sv, coefficient, seed=seed).new_tokens
            total += int(torch.isin(new, plus).sum()) - int(torch.isin(new, minus).sum())
        return total

    assert balance(4.0) > balance(0.0) > balance(-4.0)


DIGITS = " ".join(str(i % 10) for i in range(140))  # 279 characters, 140 tokens: past n_ctx = 128


def test_a_279_character_pair_of_digits_is_cut_to_the_context_window(lm):
    """This pair once crashed the page with an IndexError (positions past the context window)."""
    assert len(DIGITS) == 279 and lm.cfg.n_ctx == 128
    plus, minus = DIGITS, DIGITS[:100] + "7" + DIGITS[101:]  # digit 50 (a 0) becomes a 7
    sv = S.mean_difference(lm, [(plus, minus)], LAYER)
    assert torch.isfinite(sv.vector).all() and sv.norm > 0
    targets = E.targets_from_pairs(lm, [(plus, minus)])
    assert targets.plus_words == (" 0",) and targets.minus_words == (" 7",)
    assert targets.prompts == (DIGITS[:99],)
    p_plus, p_minus, diff = E.next_token_effect(lm, sv, targets, [0.0, 4.0], start_pos=127)
    assert np.all(np.isfinite(diff)) and p_plus[0] > p_minus[0]  # the sequence says " 0" comes next
    assert S.typical_norm(lm, sv.hook_name, [plus, minus]) > 0
    late = DIGITS[:-1] + "0"  # differs only in the last digit, long after the cut
    with pytest.raises(ValueError, match="context window of 128 tokens"):
        S.mean_difference(lm, [(plus, late)], LAYER)
    with pytest.raises(ValueError, match="context window of 128 tokens"):
        E.targets_from_pairs(lm, [(plus, late)])
