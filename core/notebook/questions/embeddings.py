"""Questions of the Embeddings & positions page, graded on what the page measures: the categories'
separation (core.interp.embeddings.geometry.Separation) and where an analogy's true answer ranks
(core.interp.embeddings.verdicts.AnalogyCheck), through the verdicts the page words."""

from __future__ import annotations

from core.interp.embeddings.geometry import Separation
from core.interp.embeddings.verdicts import (
    NEAR_TOP,
    SEPARATED_AT,
    AnalogyCheck,
    separation_verdict,
)
from core.notebook.questions import Grade, Question, register

SEPARATION_OPTIONS = {"chance": "no better than chance",
                      "partly": f"better than chance, but under {SEPARATED_AT:.0%}",
                      "cleanly": f"{SEPARATED_AT:.0%} or more"}
ANALOGY_OPTIONS = {"first": "first", "near the top": f"2nd to {NEAR_TOP}th", "further down": "further down"}


def _grade_separation(sep: Separation, answer: str) -> Grade:
    v = separation_verdict(sep)
    measured = (f"{SEPARATION_OPTIONS[v.level]}: the probe scores {v.accuracy:.0%} on held-out tokens "
                f"({v.baseline_name}: {v.baseline:.0%})")
    return Grade(answer == SEPARATION_OPTIONS[v.level], measured)


def _grade_analogy(check: AnalogyCheck, answer: str) -> Grade:
    measured = (f"{check.truth} ranks {ANALOGY_OPTIONS[check.place]}: number {check.rank} of "
                f"{check.n_candidates:,} tokens")
    return Grade(answer == ANALOGY_OPTIONS[check.place], measured)


SEPARATION = register(Question(
    id="embeddings.separation", page="embeddings",
    text="Can a linear probe tell these {n} categories apart on tokens it never saw, reading only "
         "their rows of the {matrix}?",
    kind="choice", grader=_grade_separation, options=tuple(SEPARATION_OPTIONS.values())))

ANALOGY = register(Question(
    id="embeddings.analogy", page="embeddings",
    text="For {a} − {b} + {c}, where will the true answer, **{truth}**, rank among all the tokens?",
    kind="choice", grader=_grade_analogy, options=tuple(ANALOGY_OPTIONS.values())))
