"""The SAE page's question: how many of the known attributes will the SAE find? Graded on the
page's result object (a Report's findings), both ways."""

from __future__ import annotations

from dataclasses import dataclass

from core.interp.sae.features import GroundTruthMatch
from core.interp.sae.verdict import findings, is_found
from core.notebook.questions import Prediction, all_questions
from core.notebook.questions.sae import COUNT_TOLERANCE, HOW_MANY_FOUND


@dataclass
class FakeReport:
    """What the grader reads of a Report: its findings."""

    matches: list

    @property
    def findings(self):
        return findings(self.matches)


def _report(aurocs: dict[str, float]) -> FakeReport:
    return FakeReport([GroundTruthMatch(a, 40, i, v, 0.9, 0.9, is_found(v))
                       for i, (a, v) in enumerate(aurocs.items())])


REPORT = _report({"colours": 0.97, "places": 0.899, "positive words": 0.95, "negative words": 0.93,
                  "digits": 0.7, "female names": 0.75})  # 3 found


def _grade(answer: float):
    return HOW_MANY_FOUND.grade(REPORT, Prediction(HOW_MANY_FOUND.id, answer, 0.7))


def test_the_question_is_registered_for_the_page():
    assert all_questions()[HOW_MANY_FOUND.id] is HOW_MANY_FOUND and HOW_MANY_FOUND.page == "sae"
    assert "11 known attributes" in HOW_MANY_FOUND.ask(n=11) and "AUROC 0.9" in HOW_MANY_FOUND.ask(n=11)


def test_an_exact_count_is_right_and_says_what_was_found():
    grade = _grade(3)
    assert grade.correct and grade.detail.startswith("exactly")
    assert grade.measured == "3 of 6 found (colours, positive words, negative words)"


def test_within_tolerance_is_right_and_further_is_wrong():
    assert _grade(3 + COUNT_TOLERANCE).correct and _grade(3 - COUNT_TOLERANCE).correct
    wrong = _grade(3 + COUNT_TOLERANCE + 1)
    assert not wrong.correct and wrong.detail.startswith(f"{COUNT_TOLERANCE + 1} off")
    nothing = HOW_MANY_FOUND.grade(_report({"colours": 0.6}), Prediction(HOW_MANY_FOUND.id, 5, 0.9))
    assert not nothing.correct and nothing.measured == "0 of 1 found (none)"


def test_the_number_of_attributes_is_the_number_of_word_lists():
    from core.notebook.questions.sae import N_ATTRIBUTES
    from core.world.datasets import token_groups

    assert N_ATTRIBUTES == len(token_groups()) and HOW_MANY_FOUND.number_range[1] == N_ATTRIBUTES
