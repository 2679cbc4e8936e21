"""Every page's questions: the registry holds them, and each grader goes both ways on constructed
results (a right and a wrong answer)."""

from __future__ import annotations

import numpy as np
import pytest

from core.notebook.questions import Prediction, all_questions
from core.notebook.questions.attention import INDUCTION_HEAD, PREVIOUS_TOKEN_HEAD


def test_the_registry_finds_every_page_module():
    questions = all_questions()
    assert PREVIOUS_TOKEN_HEAD.id in questions and INDUCTION_HEAD.id in questions
    assert all(q.id.startswith(q.page.replace("-", "_") + ".") for q in questions.values())


def test_confidence_outside_50_to_100_percent_is_refused():
    with pytest.raises(ValueError):
        Prediction(PREVIOUS_TOKEN_HEAD.id, (0, 0), confidence=0.3)
    with pytest.raises(ValueError):
        Prediction(PREVIOUS_TOKEN_HEAD.id, (0, 0), confidence=float("nan"))


def test_best_head_grader_goes_both_ways():
    scores = {"previous_token": np.array([[0.1, 0.2], [0.97, 0.3]]), "induction": np.zeros((2, 2))}
    right = PREVIOUS_TOKEN_HEAD.grade(scores, Prediction(PREVIOUS_TOKEN_HEAD.id, (1, 0), 0.8))
    wrong = PREVIOUS_TOKEN_HEAD.grade(scores, Prediction(PREVIOUS_TOKEN_HEAD.id, (0, 1), 0.8))
    assert right.correct and "1.0" in right.measured and "0.97" in right.measured
    assert not wrong.correct and "0.20" in wrong.detail
    # a head within NEAR_TOP of the best does the job as well
    close = {"previous_token": np.array([[0.95, 0.2], [0.97, 0.3]])}
    assert PREVIOUS_TOKEN_HEAD.grade(close, Prediction(PREVIOUS_TOKEN_HEAD.id, (0, 0), 0.6)).correct


def test_a_prediction_is_graded_only_by_its_own_question():
    scores = {"induction": np.ones((1, 1)), "previous_token": np.ones((1, 1))}
    with pytest.raises(ValueError):
        INDUCTION_HEAD.grade(scores, Prediction(PREVIOUS_TOKEN_HEAD.id, (0, 0), 0.7))
