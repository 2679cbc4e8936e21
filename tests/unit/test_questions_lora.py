"""The LoRA page's questions, graded on constructed forgetting reports, right and wrong."""

from __future__ import annotations

import math

import pytest

from core.interp.finetune.forgetting import SKILLS
from core.interp.finetune.verdict import forgetting_report
from core.notebook.questions import Prediction, questions_for
from core.notebook.questions.lora import (
    DROP_TOLERANCE,
    FORGETS_MORE,
    FULL_MORE,
    LORA_MORE,
    MEAN_DROP,
    SAME,
)


def _history(facts_after: float, ioi_after: float = 1.0):
    before = dict.fromkeys(SKILLS, 1.0) | {"task_accuracy": 0.1, "val_loss": 1.8}
    after = before | {"fact_accuracy": facts_after, "ioi_accuracy": ioi_after, "task_accuracy": 1.0}
    return [(0, before), (150, after)]


def _report(lora_facts: float, full_facts: float | None):
    runs = {"LoRA r=8": ("lora", _history(lora_facts))}
    if full_facts is not None:
        runs["Full fine-tuning"] = ("full", _history(full_facts))
    return forgetting_report(runs)


def _grade(question, report, answer):
    return question.grade(report, Prediction(question.id, answer, 0.7))


@pytest.mark.parametrize(("lora", "full", "right"), [
    (0.9, 0.3, FULL_MORE),  # LoRA kept facts, full forgot: the paper's finding
    (0.3, 0.9, LORA_MORE),
    (0.37, 0.35, SAME),  # the audit's run
])
def test_forgets_more_is_graded_on_the_comparison_each_way(lora, full, right):
    report = _report(lora, full)
    for answer in FORGETS_MORE.options:
        grade = _grade(FORGETS_MORE, report, answer)
        assert grade.correct == (answer == right), (answer, grade)
    grade = _grade(FORGETS_MORE, report, right)
    assert grade.measured.startswith(right.lower())
    assert "LoRA r=8" in grade.measured and "Full fine-tuning" in grade.measured


def test_forgets_more_is_graded_and_printed_on_the_skills_both_runs_measured():
    # LoRA has no induction data: over its own skills it lost 0.30 on average (facts 0.6, IOI 0), full
    # fine-tuning 0.43 over three (facts 0.3, IOI 0, induction 1.0). Over the two skills both measured
    # they lost 0.30 and 0.15: LoRA forgot more, and the grade must print those two numbers.
    lora = _history(0.4)
    for _, skills in lora:
        skills["induction_accuracy"] = math.nan
    full = _history(0.7)
    full[1][1]["induction_accuracy"] = 0.0
    report = forgetting_report({"LoRA r=8": ("lora", lora), "Full fine-tuning": ("full", full)})
    assert report.comparison.more == "lora"
    grade = _grade(FORGETS_MORE, report, LORA_MORE)
    assert grade.correct and not _grade(FORGETS_MORE, report, FULL_MORE).correct
    assert grade.measured == ("lora forgets more: old skills' accuracy fell by 0.30 on average under "
                              "LoRA r=8, 0.15 under Full fine-tuning")
    assert grade.detail == "a difference of 0.15"


def test_forgets_more_with_no_shared_skill_is_never_right():
    lora = _history(0.4)
    for _, skills in lora:
        skills.update({"fact_accuracy": math.nan, "ioi_accuracy": math.nan, "induction_accuracy": math.nan})
    report = forgetting_report({"LoRA r=8": ("lora", lora), "Full fine-tuning": ("full", _history(0.4))})
    for answer in FORGETS_MORE.options:
        grade = _grade(FORGETS_MORE, report, answer)
        assert not grade.correct and "no old skill could be measured under both runs" in grade.measured


def test_forgets_more_without_a_full_run_is_never_right():
    grade = _grade(FORGETS_MORE, _report(0.5, None), SAME)
    assert not grade.correct and "no full fine-tuning run" in grade.measured


def test_mean_drop_is_right_within_the_tolerance():
    report = _report(0.4, None)  # facts lose 0.6, IOI and induction nothing: mean 0.2
    assert _grade(MEAN_DROP, report, 0.2).correct
    assert _grade(MEAN_DROP, report, 0.2 + DROP_TOLERANCE - 1e-9).correct
    assert not _grade(MEAN_DROP, report, 0.2 + DROP_TOLERANCE + 0.01).correct
    assert not _grade(MEAN_DROP, report, 0.6).correct  # the facts' drop alone is not the mean
    assert "a mean drop of 0.20 (IOI accuracy 1.00 → 1.00, Facts accuracy 1.00 → 0.40" in \
        _grade(MEAN_DROP, report, 0.2).measured


def test_the_page_has_both_questions():
    assert {q.id for q in questions_for("lora")} == {"lora.forgets_more", "lora.mean_drop"}
