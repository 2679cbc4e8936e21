"""Questions of the MLP neurons & weights page, graded on the scores of candidate rules on fresh
sentences (core.interp.neurons.scoring.RuleScore per rule)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from core.interp.neurons.scoring import RuleScore
from core.notebook.questions import Grade, Question, register

NEAR_BEST = 0.02  # a rule within this AUROC of the best explains the neuron as well: it counts as right


def _grade_best_rule(scores: Mapping[str, RuleScore], answer: str) -> Grade:
    valid = {r: s for r, s in scores.items() if not math.isnan(s.auroc)}
    if not valid:
        return Grade(False, "no candidate rule could be scored", "every rule held everywhere or nowhere")
    best = max(valid, key=lambda r: valid[r].auroc)
    top = valid[best].auroc
    mine = scores.get(answer)
    if mine is None or math.isnan(mine.auroc):
        return Grade(False, f"'{best}' scores best (AUROC {top:.2f})", f"'{answer}' could not be scored")
    correct = answer == best or mine.auroc >= top - NEAR_BEST
    detail = f"'{answer}' scores AUROC {mine.auroc:.2f}" + ("" if answer == best else f", the best {top:.2f}")
    return Grade(correct, f"'{best}' scores best (AUROC {top:.2f} on fresh sentences)", detail)


BEST_RULE = register(Question(
    id="neurons.best_rule", page="neurons",
    text="Which rule describes neuron {neuron} best (scored on fresh sentences it has not seen)?",
    kind="choice", grader=_grade_best_rule))
