"""Predict, then run: every page's question, with the function that grades it against the page's own
result object.

A question is asked before a page shows its main result. The learner answers it (a choice, a number, a
layer, or a head), says how sure they are (50-100%) and why in one line; then the page computes the
result and `Question.grade(result, prediction)` says whether the prediction was right, in words
computed from that result. Predicting first is what makes a demonstration teach (Crouch et al. 2004;
Miller et al. 2013): a learner who has committed to an answer notices the surprise.

Each page's questions live in one module of this package (questions/attention.py, ...), registered
with `register`; `all_questions()` imports them all, so a test can check every grader.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

AnswerKind = Literal["choice", "number", "layer", "head"]
Answer = str | float | int | tuple[int, int]
MIN_CONFIDENCE, MAX_CONFIDENCE = 0.5, 1.0


@dataclass(frozen=True)
class Prediction:
    question_id: str
    answer: Answer  # choice: the option text; number: float; layer: int; head: (layer, head)
    confidence: float  # 0.5 (a coin toss) .. 1.0 (certain)
    reason: str = ""  # one line of why

    def __post_init__(self):
        if not (MIN_CONFIDENCE <= self.confidence <= MAX_CONFIDENCE) or math.isnan(self.confidence):
            raise ValueError(f"confidence must be between {MIN_CONFIDENCE} and {MAX_CONFIDENCE}")


@dataclass(frozen=True)
class Grade:
    correct: bool
    measured: str  # the measured outcome in words, e.g. "head 2.0 (previous-token score 0.97)"
    detail: str = ""  # why that counts as right or wrong, e.g. "within 0.1 of 0.42"


@dataclass(frozen=True)
class Question:
    id: str  # "<page>.<name>", unique
    page: str  # the page's url_path (ui.common.registry)
    text: str  # may hold {fields} the page fills in: "At which layer does {attribute} ..."
    kind: AnswerKind
    grader: Callable[[Any, Answer], Grade] = field(repr=False)  # (page result, answer) -> Grade
    options: tuple[str, ...] = ()  # for "choice"
    number_range: tuple[float, float, float] = (0.0, 1.0, 0.01)  # for "number": min, max, step
    unit: str = ""  # for "number", shown next to the input

    def ask(self, **fields) -> str:
        """The question's text with the page's fields filled in."""
        return self.text.format(**fields) if fields else self.text

    def grade(self, result, prediction: Prediction) -> Grade:
        """Grade a prediction against the page's result object."""
        if prediction.question_id != self.id:
            raise ValueError(f"prediction for {prediction.question_id!r} graded by {self.id!r}")
        return self.grader(result, prediction.answer)


QUESTIONS: dict[str, Question] = {}


def register(question: Question) -> Question:
    """Add a question to the registry (ids are unique: registering one twice is a bug)."""
    if question.id in QUESTIONS and QUESTIONS[question.id] is not question:
        raise ValueError(f"two questions share the id {question.id!r}")
    QUESTIONS[question.id] = question
    return question


def all_questions() -> dict[str, Question]:
    """Every question of every page (imports each module of this package once)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return dict(QUESTIONS)


def questions_for(page: str) -> list[Question]:
    return [q for q in all_questions().values() if q.page == page]


# -- graders shared by many questions -------------------------------------------------------------
def within(predicted: float, measured: float, tolerance: float) -> bool:
    """A number prediction is right when it is within `tolerance` (absolute) of the measured value."""
    return abs(float(predicted) - float(measured)) <= tolerance


def head_name(head: tuple[int, int]) -> str:
    return f"{head[0]}.{head[1]}"
