"""Every page's questions: the registry holds them, and each grader goes both ways on constructed
results (a right and a wrong answer)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.notebook.questions import Prediction, all_questions
from core.notebook.questions.attention import INDUCTION_HEAD, PREVIOUS_TOKEN_HEAD
from core.notebook.questions.bundled_model import LIMITS, WORST_LIMIT, can_ask, limit_accuracies
from core.notebook.questions.xor import OUTCOME as XOR_OUTCOME


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


def _run(outcome: str, accuracy: float = 1.0, epochs: int = 500, plateau=None, diverged=None):
    """A stand-in for a TrainResult: the grader reads only the diagnosis and the final numbers."""
    diagnosis = SimpleNamespace(outcome=outcome, plateau_since=plateau, diverged_at=diverged)
    return SimpleNamespace(diagnosis=diagnosis, final_accuracy=accuracy, epochs_run=epochs)


def test_xor_outcome_grader_goes_both_ways():
    solved = _run("solved")
    right = XOR_OUTCOME.grade(solved, Prediction(XOR_OUTCOME.id, "Solves it", 0.9))
    wrong = XOR_OUTCOME.grade(solved, Prediction(XOR_OUTCOME.id, "Gets stuck", 0.6))
    assert right.correct and not wrong.correct
    assert right.measured == "solved (100% of points right after 500 epochs)"
    stuck = _run("stuck", accuracy=0.75, plateau=105)
    assert XOR_OUTCOME.grade(stuck, Prediction(XOR_OUTCOME.id, "Gets stuck", 0.7)).correct
    assert "from epoch 105 (75% of points right)" in XOR_OUTCOME.grade(
        stuck, Prediction(XOR_OUTCOME.id, "Diverges", 0.7)).measured
    diverged = XOR_OUTCOME.grade(_run("diverged", diverged=12), Prediction(XOR_OUTCOME.id, "Diverges", 0.5))
    assert diverged.correct and diverged.measured == "diverged at epoch 12"
    with pytest.raises(ValueError):
        XOR_OUTCOME.grade(solved, Prediction(XOR_OUTCOME.id, "Explodes", 0.5))


def test_xor_grader_on_a_real_run():
    from core.scratch.data import make_dataset
    from core.scratch.train import TrainConfig, train

    xor = make_dataset("xor")
    run = train(TrainConfig(hidden=(4,), init="zero"), xor.X, xor.y)  # twins: stuck
    assert XOR_OUTCOME.grade(run, Prediction(XOR_OUTCOME.id, "Gets stuck", 0.8)).correct
    assert not XOR_OUTCOME.grade(run, Prediction(XOR_OUTCOME.id, "Solves it", 0.8)).correct


def _report(**accuracy) -> dict:
    names = dict(zip(LIMITS, ("new phrasing, known words", "unknown words", "facts, paraphrased"),
                     strict=True))
    return {"limits": {names[label]: {"n": 100, "accuracy": value} for label, value in accuracy.items()}}


def test_bundled_worst_limit_grader_goes_both_ways():
    frame, unknown, facts = LIMITS
    report = _report(**{frame: 0.15, unknown: 0.04, facts: 0.44})
    right = WORST_LIMIT.grade(report, Prediction(WORST_LIMIT.id, unknown, 0.8))
    wrong = WORST_LIMIT.grade(report, Prediction(WORST_LIMIT.id, facts, 0.8))
    assert right.correct and not wrong.correct
    assert right.measured.startswith("words it never saw is worst, 4% right")
    assert "Facts in new words: 44% right" in wrong.detail
    close = _report(**{frame: 0.07, unknown: 0.04, facts: 0.44})  # within NEAR_WORST of the worst
    assert WORST_LIMIT.grade(close, Prediction(WORST_LIMIT.id, frame, 0.6)).correct
    flipped = _report(**{frame: 0.9, unknown: 0.8, facts: 0.1})
    assert WORST_LIMIT.grade(flipped, Prediction(WORST_LIMIT.id, facts, 0.6)).correct
    assert not can_ask({"limits": {}}) and can_ask(report)


def test_bundled_grader_on_the_shipped_report():
    from core.bundled.report import load_report
    from core.models.loading import BUNDLED_DIR

    report = load_report(BUNDLED_DIR)
    accuracy = limit_accuracies(report)
    worst = min(accuracy, key=accuracy.get)
    assert WORST_LIMIT.grade(report, Prediction(WORST_LIMIT.id, worst, 0.7)).correct
    best = max(accuracy, key=accuracy.get)
    assert not WORST_LIMIT.grade(report, Prediction(WORST_LIMIT.id, best, 0.7)).correct


def test_every_page_of_mine_registers_a_question():
    pages = {q.page for q in all_questions().values()}
    assert {"attention", "xor", "bundled-model"} <= pages
