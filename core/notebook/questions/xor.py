"""Questions of the XOR page, graded on the finished training run (core.scratch.train.TrainResult):
what will this network do, given its settings?"""

from __future__ import annotations

from core.notebook.questions import Grade, Question, register

# The four things a run can end as (core.scratch.diagnose), as the learner picks them.
OUTCOMES = {"Solves it": "solved", "Gets stuck": "stuck", "Diverges": "diverged",
            "Still learning": "learning"}


def _measured(result) -> str:
    """The run's outcome with the numbers behind it."""
    d = result.diagnosis
    if d.outcome == "diverged":
        return f"diverged at epoch {d.diverged_at}"
    if d.outcome == "stuck":
        return f"stuck on a plateau from epoch {d.plateau_since} ({result.final_accuracy:.0%} of points " \
               "right)"
    if d.outcome == "solved":
        return f"solved ({result.final_accuracy:.0%} of points right after {result.epochs_run:,} epochs)"
    return (f"still learning ({result.final_accuracy:.0%} right when training ended at epoch "
            f"{result.epochs_run:,})")


def grade_outcome(result, answer: str) -> Grade:
    """Right when the predicted outcome is the run's (diagnosis.outcome)."""
    if answer not in OUTCOMES:
        raise ValueError(f"{answer!r} is not one of {tuple(OUTCOMES)}")
    return Grade(OUTCOMES[answer] == result.diagnosis.outcome, _measured(result))


OUTCOME = register(Question(
    id="xor.outcome", page="xor",
    text="What will {setup} do when it trains?",
    kind="choice", grader=grade_outcome, options=tuple(OUTCOMES)))
