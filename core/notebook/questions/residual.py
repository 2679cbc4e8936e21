"""Questions of the Residual stream page, graded on its readability result
(core.interp.residual.verdicts.Readability: the first stream point from which the answer is the
lens's top prediction, through the output)."""

from __future__ import annotations

from core.interp.residual.verdicts import Readability
from core.models.hook_names import layer_words
from core.notebook.questions import Grade, Question, register


def _where(layer: int | None) -> str:
    if layer is None:
        return "never (the answer is not the model's top prediction)"
    return layer_words(layer)


def _grade_first_readable(result: Readability, answer: int) -> Grade:
    measured = result.first_layer
    words = f"{result.answer or 'the answer'} first becomes readable at {_where(measured)}"
    if measured is None:
        return Grade(False, words, "no layer is right when the answer never becomes the top prediction")
    share = result.share_top[list(result.layers).index(measured)]
    before = list(result.layers).index(measured) - 1
    detail = f"{share:.0%} of the prompts have it on top there" if result.n_prompts > 1 else ""
    if int(answer) != measured and before >= 0:
        detail = (detail + "; " if detail else "") + (
            f"one point earlier, {_where(result.layers[before])}, it is on top for "
            f"{result.share_top[before]:.0%}")
    return Grade(int(answer) == measured, words, detail)


FIRST_READABLE = register(Question(
    id="residual.first_readable", page="residual",
    text="At which layer does {answer} first become readable: the logit lens's top prediction at the "
         "last token, staying on top through the output?",
    kind="layer", grader=_grade_first_readable))
