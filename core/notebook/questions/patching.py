"""Questions of the Activation patching page, graded on the head sweep the page runs: the effect of
patching each head at every position ([layer, head], normalised: 1 = the whole behaviour restored or
destroyed, see core.interp.patching.sweeps)."""

from __future__ import annotations

import numpy as np

from core.notebook.questions import Grade, Question, head_name, register

NEAR_TOP = 0.05  # a head within this of the strongest effect matters as much: it counts as right


def _grade_top_head(effects, answer: tuple[int, int]) -> Grade:
    table = np.abs(np.nan_to_num(np.asarray(effects, dtype=float)))  # [layer, head]
    best = tuple(int(i) for i in np.unravel_index(np.argmax(table), table.shape))
    top, mine = float(table[best]), float(table[tuple(answer)])
    correct = tuple(answer) == best or mine >= top - NEAR_TOP
    detail = f"head {head_name(answer)} moves it {mine:.0%}"
    if tuple(answer) != best:
        detail += f", the best {top:.0%}"
    return Grade(correct, f"head {head_name(best)} matters most: patching it alone moves the behaviour "
                          f"{top:.0%}",
                 detail)


TOP_HEAD = register(Question(
    id="patching.top_head", page="patching",
    text="Which head matters most for this behaviour ({behaviour})? Patching that head alone will move "
         "the metric the most.",
    kind="head", grader=_grade_top_head))
