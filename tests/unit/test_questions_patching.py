"""The patching page's question, graded both ways on constructed head effects."""

from __future__ import annotations

import numpy as np

from core.notebook.questions import Prediction, all_questions
from core.notebook.questions.patching import NEAR_TOP, TOP_HEAD

EFFECTS = np.array([[0.02, 0.0, 0.1, 0.0],
                    [0.0, 0.3, 0.0, 0.0],
                    [0.0, -0.05, 0.0, 0.0],
                    [0.97, 0.0, 0.0, 0.94]])  # [layer, head]


def grade(head):
    return TOP_HEAD.grade(EFFECTS, Prediction(TOP_HEAD.id, head, 0.7))


def test_the_top_head_is_right_and_names_itself():
    g = grade((3, 0))
    assert g.correct and "head 3.0 matters most" in g.measured and "97%" in g.measured


def test_a_head_within_near_top_counts_and_a_weaker_one_does_not():
    assert 0.97 - 0.94 <= NEAR_TOP
    near = grade((3, 3))
    assert near.correct and "the best 97%" in near.detail
    far = grade((1, 1))
    assert not far.correct and "head 1.1 moves it 30%" in far.detail


def test_negative_effects_count_by_size():
    effects = EFFECTS.copy()
    effects[2, 1] = -1.2  # patching it moves the metric the other way, further than anything else
    assert TOP_HEAD.grade(effects, Prediction(TOP_HEAD.id, (2, 1), 0.6)).correct


def test_the_question_is_registered_for_the_page():
    assert all_questions()["patching.top_head"] is TOP_HEAD and TOP_HEAD.kind == "head"
    assert "IOI" in TOP_HEAD.ask(behaviour="IOI")
