"""The forgetting verdicts on constructed histories that go each way, and the page's words built from
them: every sentence of "what to notice" follows the numbers, never a script."""

from __future__ import annotations

import math

import pytest

from core.interp.finetune.forgetting import SKILLS
from core.interp.finetune.verdict import (
    FORGOT,
    LEARNED,
    SAME_WITHIN,
    forgetting_report,
    run_verdict,
)
from ui.lora.views import comparison_sentences, learning_sentence, run_sentence


def history(task=(0.1, 1.0), ioi=(1.0, 1.0), facts=(1.0, 1.0), induction=(1.0, 1.0), val=(1.8, 1.8)):
    """[(0, before), (150, after)] with the given (before, after) per skill."""
    pairs = {"task_accuracy": task, "ioi_accuracy": ioi, "fact_accuracy": facts,
             "induction_accuracy": induction, "val_loss": val, "ioi_logit_diff": (9.0, 9.0)}
    return [(0, {s: pairs[s][0] for s in SKILLS}), (150, {s: pairs[s][1] for s in SKILLS})]


def test_run_verdict_learned_and_forgot_follow_the_thresholds():
    v = run_verdict("LoRA r=8", "lora", history(task=(0.0, LEARNED), facts=(1.0, 1.0 - FORGOT),
                                                ioi=(1.0, 1.0 - FORGOT + 0.01)))
    assert v.learned and [d.skill for d in v.forgotten] == ["fact_accuracy"]
    assert v.mean_drop == pytest.approx((FORGOT + FORGOT - 0.01) / 3)
    v = run_verdict("LoRA r=8", "lora", history(task=(0.0, LEARNED - 0.01)))
    assert not v.learned and v.forgotten == () and v.mean_drop == 0
    assert run_verdict("x", "lora", history()[:1]) is None  # one measurement: no verdict
    nan = history(facts=(math.nan, math.nan))
    assert [d.skill for d in run_verdict("x", "lora", nan).drops] == ["ioi_accuracy", "induction_accuracy"]


def test_the_audits_run_compares_about_the_same_overall_and_ioi_worse_under_lora():
    # the numbers the learner walkthrough saw: facts 1.00 -> 0.37 / 0.35, IOI 1.00 -> 0.94 / 1.00
    report = forgetting_report({
        "LoRA r=8": ("lora", history(facts=(1.0, 0.37), ioi=(1.0, 0.94), induction=(1.0, 0.99))),
        "Full fine-tuning": ("full", history(facts=(1.0, 0.35), ioi=(1.0, 1.0), induction=(1.0, 0.995))),
    })
    c = report.comparison
    by = {s.skill: s for s in c.skills}
    assert by["fact_accuracy"].more == "same"  # 0.63 vs 0.65: closer than SAME_WITHIN
    assert by["ioi_accuracy"].more == "lora"  # 0.06 vs 0.00
    assert by["induction_accuracy"].kept_by_both
    assert c.more == "same" and not c.agrees_with_paper
    words = " ".join(comparison_sentences(c))
    assert "Facts accuracy fell about as much under both: 1.00 → 0.37 under LoRA r=8, 1.00 → 0.35" in words
    assert ("IOI accuracy fell more under LoRA r=8 (1.00 → 0.94) than under Full fine-tuning "
            "(1.00 → 1.00)") in words
    assert f"Induction accuracy: kept by both, each fell by less than {FORGOT:.2f} (1.00 → 0.99" in words
    assert "about the same" in words and "this run did not." in words


@pytest.mark.parametrize(("lora_facts", "full_facts", "more", "agrees", "phrase"), [
    (0.2, 0.8, "full", True, "Overall, Full fine-tuning forgot more"),  # LoRA kept more: as the paper found
    (0.8, 0.2, "lora", False, "Overall, LoRA r=8 forgot more"),
    (0.5, 0.5 + SAME_WITHIN * 2.9, "same", False, "about the same"),  # mean differs < SAME_WITHIN
])
def test_the_overall_verdict_goes_each_way(lora_facts, full_facts, more, agrees, phrase):
    report = forgetting_report({"LoRA r=8": ("lora", history(facts=(1.0, 1.0 - lora_facts))),
                                "Full fine-tuning": ("full", history(facts=(1.0, 1.0 - full_facts)))})
    assert report.comparison.more == more and report.comparison.agrees_with_paper == agrees
    words = " ".join(comparison_sentences(report.comparison))
    assert phrase in words
    assert ("so did this run." in words) == agrees


def test_no_comparison_without_both_methods_and_single_run_words():
    report = forgetting_report({"LoRA r=8": ("lora", history(facts=(1.0, 0.4))),
                                "IA3": ("ia3", history(task=(0.1, 0.2)))})
    assert report.comparison is None and report.lora.label == "LoRA r=8"
    assert run_sentence(report.run("LoRA r=8")) == ("LoRA r=8 forgot part of what the model could do: "
                                                    "Facts accuracy 1.00 → 0.40.")
    assert "IA3 kept the old skills" in run_sentence(report.run("IA3"))
    none = run_verdict("x", "lora", history(facts=(math.nan,) * 2, ioi=(math.nan,) * 2,
                                            induction=(math.nan,) * 2))
    assert "no old skill could be measured" in run_sentence(none)


def test_learning_sentence_each_way():
    both = forgetting_report({"A": ("lora", history()), "B": ("full", history())})
    assert learning_sentence(both).startswith("Every run learned the new task (its accuracy: A 0.10 → 1.00")
    neither = forgetting_report({"A": ("lora", history(task=(0.1, 0.5)))})
    assert learning_sentence(neither).startswith("No run learned the new task yet")
    mixed = forgetting_report({"A": ("lora", history(task=(0.1, 0.5))), "B": ("full", history())})
    assert learning_sentence(mixed).startswith("B learned the new task, A did not")
