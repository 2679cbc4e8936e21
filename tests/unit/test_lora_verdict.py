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
    UNSTABLE_LOSS_RISE,
    forgetting_report,
    run_verdict,
)
from ui.lora.words import comparison_sentences, learn_forget_advice, learning_sentence, run_sentence


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
    assert learning_sentence(both) == ("Every run learned the new task (its accuracy: A 0.10 → 1.00, "
                                       "B 0.10 → 1.00).")
    neither = forgetting_report({"A": ("lora", history(task=(0.1, 0.5)))})
    assert learning_sentence(neither) == ("A did not learn the new task yet (its accuracy: A 0.10 → 0.50; "
                                          f"{LEARNED:.2f} counts as learned). Try more steps or a larger "
                                          "learning rate.")
    two = forgetting_report({"A": ("lora", history(task=(0.1, 0.5))),
                             "B": ("full", history(task=(0.1, 0.2)))})
    assert learning_sentence(two).startswith("No run learned the new task yet (its accuracy: A 0.10 → 0.50, ")
    assert learning_sentence(two).endswith("Try more steps or a larger learning rate for A, B.")
    mixed = forgetting_report({"A": ("lora", history(task=(0.1, 0.5))), "B": ("full", history())})
    assert learning_sentence(mixed) == ("B learned the new task, A did not (its accuracy: A 0.10 → 0.50, "
                                        "B 0.10 → 1.00). Try more steps or a larger learning rate for A.")


def test_a_diverged_run_is_told_to_take_a_smaller_rate_never_a_larger_one():
    # the reviewer's case: weights became NaN, the task was not learned (the last measurement, on NaN)
    report = forgetting_report({"LoRA r=8": ("lora", history(task=(0.25, 0.0), val=(1.2, math.nan)))},
                               diverged={"LoRA r=8"})
    assert report.diverged == ("LoRA r=8",) and report.runs[0].diverged
    assert report.runs[0].advice == "smaller_lr" and not report.runs[0].learned
    words = learning_sentence(report)
    assert words == ("LoRA r=8: training diverged (the loss or some weights became NaN or infinite), so its "
                     "learning rate was too large: try a smaller one.")
    assert "larger" not in words and "more steps" not in words
    # a diverged run whose last measurement still had the task right has not learned it: its weights are NaN
    late = forgetting_report({"LoRA r=8": ("lora", history()), "Full fine-tuning": ("full", history())},
                             diverged=("Full fine-tuning",))
    assert not late.run("Full fine-tuning").learned and late.run("LoRA r=8").learned
    words = learning_sentence(late)
    assert words.startswith("Full fine-tuning: training diverged")
    assert "LoRA r=8 learned the new task (its accuracy: LoRA r=8 0.10 → 1.00)." in words
    assert "Every run" not in words and "larger" not in words
    # a run that diverged before its second measurement has no verdict, but is still named
    early = forgetting_report({"LoRA r=8": ("lora", history()[:1]), "Full fine-tuning": ("full", history())},
                              diverged={"LoRA r=8"})
    assert [r.label for r in early.runs] == ["Full fine-tuning"] and early.diverged == ("LoRA r=8",)
    assert learning_sentence(early).startswith("LoRA r=8: training diverged")
    # one run diverged, the other did not learn: each gets the advice for its own learning rate
    split = forgetting_report({"LoRA r=8": ("lora", history(task=(0.1, 0.2))),
                               "Full fine-tuning": ("full", history(task=(0.1, 0.3)))},
                              diverged=("LoRA r=8",))
    words = learning_sentence(split)
    assert "LoRA r=8: training diverged" in words and "No other run" not in words
    assert "Full fine-tuning did not learn the new task yet" in words
    assert words.endswith("Try more steps or a larger learning rate.")


@pytest.mark.parametrize(("rise", "advice"), [
    (UNSTABLE_LOSS_RISE, "smaller_lr"),  # moved far, not towards the task: steps too large
    (UNSTABLE_LOSS_RISE - 0.01, "more_steps_or_larger_lr"),  # barely moved: too few or too small steps
    (math.nan, "more_steps_or_larger_lr"),  # no validation loss: no sign of steps too large
])
def test_a_run_that_did_not_learn_gets_advice_from_its_loss_on_the_original_text(rise, advice):
    report = forgetting_report({"Full fine-tuning": ("full", history(task=(0.25, 0.25),
                                                                     val=(1.2, 1.2 + rise)))})
    run = report.runs[0]
    assert run.advice == advice and not run.learned
    words = learning_sentence(report)
    if advice == "smaller_lr":
        assert (f"Full fine-tuning did not learn it while its loss on the original text rose by {rise:.1f} "
                f"nats ({UNSTABLE_LOSS_RISE:g} or more: steps too large to settle): try a smaller learning "
                "rate.") in words
        assert "larger" not in words
    else:
        assert words.endswith("Try more steps or a larger learning rate.") and "smaller" not in words
    learned = forgetting_report({"A": ("full", history(val=(1.2, 1.2 + UNSTABLE_LOSS_RISE * 5)))}).runs[0]
    assert learned.learned and learned.unstable and learned.advice is None  # learned: nothing to advise


def test_which_forgot_more_uses_the_skills_both_runs_measured_and_prints_those_means():
    # LoRA has no induction data (NaN), full fine-tuning lost all of it: over each run's own skills the
    # means would be LoRA 0.30 (facts 0.6, IOI 0) and full (0.3 + 0 + 1.0) / 3 = 0.43: "full forgot more".
    # Over the skills both measured (facts, IOI) they are 0.30 and 0.15: LoRA forgot more.
    report = forgetting_report({
        "LoRA r=8": ("lora", history(facts=(1.0, 0.4), induction=(math.nan, math.nan))),
        "Full fine-tuning": ("full", history(facts=(1.0, 0.7), induction=(1.0, 0.0))),
    })
    c = report.comparison
    assert c.lora.mean_drop == pytest.approx(0.3) and c.full.mean_drop == pytest.approx(1.3 / 3)
    assert c.lora_mean_drop == pytest.approx(0.3) and c.full_mean_drop == pytest.approx(0.15)
    assert c.more == "lora" and not c.agrees_with_paper
    overall = comparison_sentences(c)[-1]
    assert overall.startswith("Overall, LoRA r=8 forgot more: it lost 0.30 of accuracy on average over these "
                              "skills, Full fine-tuning 0.15.")
    assert "0.43" not in overall


def test_no_shared_skill_means_no_comparison_in_words():
    none = (math.nan, math.nan)
    report = forgetting_report({"LoRA r=8": ("lora", history(facts=none, ioi=none, induction=none)),
                                "Full fine-tuning": ("full", history())})
    c = report.comparison
    assert c.skills == () and c.more == "same" and math.isnan(c.lora_mean_drop)
    assert comparison_sentences(c) == ["No old skill could be measured under both LoRA r=8 and Full "
                                       "fine-tuning on this model, so their forgetting cannot be compared."]


def _two(lora_facts: float, full_facts: float):
    return forgetting_report({"LoRA r=8": ("lora", history(facts=(1.0, lora_facts))),
                              "Full fine-tuning": ("full", history(facts=(1.0, full_facts)))})


def test_the_advice_to_move_left_follows_which_run_forgot_more():
    lora_more = learn_forget_advice(_two(0.3, 0.9))
    assert lora_more == ("Here LoRA r=8 forgot more than Full fine-tuning: to move its point left, train "
                         "again with a smaller LoRA learning rate or with replay.")
    assert "lower LoRA rank" not in lora_more
    full_more = learn_forget_advice(_two(0.9, 0.3))
    assert full_more.startswith("Here Full fine-tuning forgot more, as Biderman et al. (2024) found")
    assert "smaller full fine-tuning learning rate" in full_more and "lower LoRA rank" in full_more
    same = learn_forget_advice(_two(0.5, 0.5 + SAME_WITHIN / 2))
    assert same.startswith("Here LoRA r=8 and Full fine-tuning forgot about as much")
    kept = learn_forget_advice(_two(1.0 - FORGOT + 0.01, 1.0))  # nobody lost FORGOT: nothing to move
    assert kept.startswith(f"No run lost {FORGOT:.2f} or more") and "forgot more" not in kept
    alone = learn_forget_advice(forgetting_report({"LoRA r=8": ("lora", history(facts=(1.0, 0.4)))}))
    assert alone.startswith("To move a point left, train again with replay")
