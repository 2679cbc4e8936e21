"""Graders of the Residual stream and MLP neurons pages, on constructed results, each way."""

from __future__ import annotations

import numpy as np

from core.interp.neurons.scoring import RuleScore
from core.interp.residual.verdicts import Readability
from core.notebook.questions import Prediction
from core.notebook.questions.neurons import BEST_RULE
from core.notebook.questions.residual import FIRST_READABLE


def readable(first, share):
    return Readability("logit", (-1, 0, 1, 2), np.array(share), np.array(share), first, 1, "' Mary'")


def test_first_readable_is_right_only_at_the_measured_layer():
    r = readable(2, [0, 0, 1, 1])
    right = FIRST_READABLE.grade(r, Prediction(FIRST_READABLE.id, 2, 0.8))
    assert right.correct and "layer 2" in right.measured
    wrong = FIRST_READABLE.grade(r, Prediction(FIRST_READABLE.id, -1, 0.8))
    assert not wrong.correct and "layer 1" in wrong.detail  # says what one point earlier looked like
    emb = FIRST_READABLE.grade(readable(-1, [1, 1, 1, 1]), Prediction(FIRST_READABLE.id, -1, 0.6))
    assert emb.correct and "the embeddings" in emb.measured


def test_first_readable_when_the_answer_never_wins():
    g = FIRST_READABLE.grade(readable(None, [0, 0, 0, 0]), Prediction(FIRST_READABLE.id, 2, 0.9))
    assert not g.correct and "never" in g.measured


def score(rule, auroc):
    return RuleScore(rule, auroc, 0.0, 0.1, 10, 1.0, 0.0, 0.5, "partly")


def test_best_rule_grader_accepts_the_best_and_near_ties():
    scores = {"colour": score("colour", 0.97), "place": score("place", 0.96), "name": score("name", 0.6)}
    assert BEST_RULE.grade(scores, Prediction(BEST_RULE.id, "colour", 0.7)).correct
    assert BEST_RULE.grade(scores, Prediction(BEST_RULE.id, "place", 0.7)).correct  # within NEAR_BEST
    g = BEST_RULE.grade(scores, Prediction(BEST_RULE.id, "name", 0.7))
    assert not g.correct and "'colour' scores best" in g.measured


def test_best_rule_grader_with_unscorable_rules():
    scores = {"a": score("a", float("nan")), "b": score("b", 0.7)}
    assert not BEST_RULE.grade(scores, Prediction(BEST_RULE.id, "a", 0.7)).correct
    assert BEST_RULE.grade(scores, Prediction(BEST_RULE.id, "b", 0.7)).correct
    none = {"a": score("a", float("nan"))}
    assert not BEST_RULE.grade(none, Prediction(BEST_RULE.id, "a", 0.7)).correct
