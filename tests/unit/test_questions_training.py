"""The training page's questions, graded on constructed training logs, right and wrong."""

from __future__ import annotations

import pytest

from core.interp.training.log import Checkpoint, TrainingLog
from core.notebook.questions import Prediction, questions_for
from core.notebook.questions.training import GROKS, INDUCTION_FORMS, NO, YES


def _grade(question, log, answer):
    return question.grade(log, Prediction(question.id, answer, 0.7))


def _induction_log(best: list[float]) -> TrainingLog:
    def scores(v):
        return {"induction": [[0.01, 0.02], [0.03, v]], "previous_token": [[0.7, 0.1], [0.1, 0.1]]}
    return TrainingLog({}, [Checkpoint(step=100 * i, train_loss=1.0, scores=scores(v))
                            for i, v in enumerate(best)])


@pytest.mark.parametrize(("series", "right"), [([0.02, 0.1, 0.7, 0.9], YES), ([0.02, 0.1, 0.3, 0.35], NO)])
def test_induction_forms_is_graded_on_the_logged_scores(series, right):
    log = _induction_log(series)
    for answer in (YES, NO):
        assert _grade(INDUCTION_FORMS, log, answer).correct == (answer == right)
    grade = _grade(INDUCTION_FORMS, log, right)
    assert grade.measured.startswith(right.lower())
    assert "head 1.1" in grade.measured
    if right == YES:
        assert "at step 200" in grade.measured
    else:
        assert "0.35" in grade.measured and "300 steps" in grade.measured


def _grok_log(test_acc: list[float]) -> TrainingLog:
    return TrainingLog({}, [Checkpoint(step=500 * i, train_loss=1.0, train_acc=min(1.0, 0.5 * i), test_acc=a)
                            for i, a in enumerate(test_acc)])


@pytest.mark.parametrize(("series", "right"), [([0.0, 0.1, 0.3, 0.95], YES), ([0.0, 0.1, 0.3, 0.6], NO)])
def test_groks_is_graded_on_the_logged_test_accuracy(series, right):
    log = _grok_log(series)
    for answer in (YES, NO):
        assert _grade(GROKS, log, answer).correct == (answer == right)
    measured = _grade(GROKS, log, right).measured
    if right == YES:
        assert "at step 1,500" in measured
    else:
        assert "60%" in measured and "1,500 steps" in measured


def test_a_question_that_does_not_apply_is_never_right():
    assert not _grade(GROKS, _induction_log([0.9]), YES).correct
    assert not _grade(INDUCTION_FORMS, _grok_log([0.9]), NO).correct


def test_the_page_has_its_questions_registered():
    assert {q.id for q in questions_for("training")} == {INDUCTION_FORMS.id, GROKS.id}
    assert "1,500" in INDUCTION_FORMS.ask(steps="1,500")
