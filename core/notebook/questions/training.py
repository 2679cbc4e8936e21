"""Questions of the training page, graded on the finished (or stopped) run's training log
(core.interp.training.log.TrainingLog) through the phase verdicts of core.interp.training.phase."""

from __future__ import annotations

from core.interp.training.log import TrainingLog
from core.interp.training.phase import (
    ACCURACY_REACHED,
    INDUCTION_FORMED,
    grok_verdict,
    induction_verdict,
)
from core.notebook.questions import Grade, Question, head_name, register

YES, NO = "Yes", "No"


def _grade_induction(log: TrainingLog, answer: str) -> Grade:
    verdict = induction_verdict(log)
    if verdict is None:
        return Grade(False, "this run measured no head scores", "the question does not apply")
    layer, head, score = verdict.head
    if verdict.formed:
        measured = (f"yes: head {head_name((layer, head))} reached an induction score of "
                    f"{INDUCTION_FORMED:g} at step {verdict.formed_step:,} (now {score:.2f})")
    else:
        measured = (f"no: the best induction score after {verdict.last_step:,} steps is {score:.2f} "
                    f"(head {head_name((layer, head))}), under {INDUCTION_FORMED:g}")
    return Grade((answer == YES) == verdict.formed, measured)


def _grade_grokking(log: TrainingLog, answer: str) -> Grade:
    verdict = grok_verdict(log)
    if verdict is None:
        return Grade(False, "this run measured no accuracy", "the question does not apply")
    reached = verdict.generalised_step is not None
    last = log.checkpoints[-1]
    if reached:
        trained = (f", training accuracy at step {verdict.memorised_step:,}"
                   if verdict.memorised_step is not None else "")
        measured = (f"yes: test accuracy reached {ACCURACY_REACHED:.0%} at step "
                    f"{verdict.generalised_step:,}{trained}")
    else:
        measured = (f"no: test accuracy is {last.test_acc:.0%} after {verdict.last_step:,} steps "
                    f"(training accuracy {last.train_acc:.0%})")
    return Grade((answer == YES) == reached, measured)


INDUCTION_FORMS = register(Question(
    id="training.induction_forms", page="training",
    text=("Will this run form an induction head (a head putting at least half its attention on the token "
          "after the earlier copy) within its {steps} steps?"),
    kind="choice", options=(YES, NO), grader=_grade_induction))

GROKS = register(Question(
    id="training.groks", page="training",
    text="Will the test accuracy (pairs never trained on) reach 90% within this run's {steps} steps?",
    kind="choice", options=(YES, NO), grader=_grade_grokking))
