"""Questions of the LoRA & forgetting page, graded on the forgetting verdicts of the runs the page
trained (core.interp.finetune.verdict.ForgettingReport). "Which forgets more" is graded on the paired
means the verdict compares (the old skills both runs measured) and prints those same numbers."""

from __future__ import annotations

import math

from core.interp.finetune.forgetting import SKILL_LABELS
from core.interp.finetune.verdict import SAME_WITHIN, ForgettingReport
from core.notebook.questions import Grade, Question, register, within

LORA_MORE, SAME, FULL_MORE = "LoRA forgets more", "About the same", "Full fine-tuning forgets more"
ANSWERS = {"lora": LORA_MORE, "same": SAME, "full": FULL_MORE}
DROP_TOLERANCE = 0.1  # a predicted mean drop within this of the measured one counts as right


def _grade_forgets_more(report: ForgettingReport, answer: str) -> Grade:
    c = report.comparison
    if c is None:
        return Grade(False, "no full fine-tuning run to compare LoRA with")
    if not c.skills:
        return Grade(False, "no old skill could be measured under both runs on this model",
                     "the question does not apply")
    lora, full = c.lora_mean_drop, c.full_mean_drop  # over the skills both measured: the numbers compared
    measured = (f"{ANSWERS[c.more].lower()}: old skills' accuracy fell by {lora:.2f} on average under "
                f"{c.lora.label}, {full:.2f} under {c.full.label}")
    detail = (f"closer than {SAME_WITHIN:.2f} counts as about the same" if c.more == "same"
              else f"a difference of {abs(lora - full):.2f}")
    return Grade(answer == ANSWERS[c.more], measured, detail)


def _grade_mean_drop(report: ForgettingReport, answer: float) -> Grade:
    run = report.lora
    if run is None or math.isnan(run.mean_drop):
        return Grade(False, "no old skill could be measured on this model")
    parts = ", ".join(f"{SKILL_LABELS[d.skill]} {d.before:.2f} → {d.after:.2f}" for d in run.drops)
    return Grade(within(answer, run.mean_drop, DROP_TOLERANCE),
                 f"a mean drop of {run.mean_drop:.2f} ({parts})", f"right within {DROP_TOLERANCE:g}")


FORGETS_MORE = register(Question(
    id="lora.forgets_more", page="lora",
    text="Will LoRA forget more of the model's old skills (IOI, facts, induction) than full fine-tuning "
         "while it learns this task?",
    kind="choice", options=(LORA_MORE, SAME, FULL_MORE), grader=_grade_forgets_more))

MEAN_DROP = register(Question(
    id="lora.mean_drop", page="lora",
    text="By how much will the old skills' accuracy fall under LoRA, on average over IOI, facts and "
         "induction (0 = nothing forgotten, 1 = everything)?",
    kind="number", number_range=(0.0, 1.0, 0.05), grader=_grade_mean_drop))
