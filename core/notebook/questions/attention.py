"""Questions of the Attention page, graded on the head scores the page measures
(core.interp.attention.head_scores: kind -> [layer, head] scores on repeated random tokens)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from core.notebook.questions import Grade, Question, head_name, register

NEAR_TOP = 0.05  # a head within this of the best score does the job as well: it counts as right


def _best_head_grader(kind: str, words: str):
    def grade(scores: Mapping[str, np.ndarray], answer: tuple[int, int]) -> Grade:
        table = np.asarray(scores[kind], dtype=float)  # [layer, head]
        best = tuple(int(i) for i in np.unravel_index(np.argmax(table), table.shape))
        top, mine = float(table[best]), float(table[tuple(answer)])
        correct = tuple(answer) == best or mine >= top - NEAR_TOP
        detail = (f"head {head_name(answer)} scores {mine:.2f}"
                  + ("" if tuple(answer) == best else f", the best {top:.2f}"))
        return Grade(correct, f"head {head_name(best)} is the strongest {words} head ({top:.2f})", detail)
    return grade


PREVIOUS_TOKEN_HEAD = register(Question(
    id="attention.previous_token_head", page="attention",
    text="Which head is the strongest previous-token head (each token looks at the one before it)?",
    kind="head", grader=_best_head_grader("previous_token", "previous-token")))

INDUCTION_HEAD = register(Question(
    id="attention.induction_head", page="attention",
    text="Which head is the strongest induction head ([A][B] ... [A] -> look at [B])?",
    kind="head", grader=_best_head_grader("induction", "induction")))
