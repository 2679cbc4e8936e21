"""Questions of the Steering page, graded on what the page measured at the learner's setting
(core.interp.steering.verdict.SteeringOutcome: the unsteered and steered texts, written with the same
seed, and the word shifts of the vector and of random pushes on the evaluation prompts)."""

from __future__ import annotations

from core.interp.steering.verdict import SteeringOutcome
from core.notebook.questions import Grade, Question, register

MORE, SAME, FEWER = "More", "As many", "Fewer"


def _more_words(result: SteeringOutcome, answer: str) -> Grade:
    plain, steered = result.toward_words("plain"), result.toward_words("steered")
    measured = MORE if steered > plain else FEWER if steered < plain else SAME
    side = result.targets.plus_name if result.toward_plus else result.targets.minus_name
    return Grade(answer == measured, f"{measured.lower()}: {steered} {side} in the steered text, "
                                     f"{plain} in the unsteered one")


MORE_CONCEPT_WORDS = register(Question(
    id="steering.more_concept_words", page="steering",
    text="At coefficient {coefficient} ({where}), will the steered text use more, as many, or fewer "
         "{words} than the unsteered one (same prompt, same seed)?",
    kind="choice", options=(MORE, SAME, FEWER), grader=_more_words))
