"""The LoRA page's charts: accuracies on fixed 0-1 axes (a one-point drop must look like one point),
the other measures apart on their own scales, and plain words for the matrices."""

from __future__ import annotations

from core.interp.finetune.forgetting import ACCURACIES, SKILL_LABELS, SKILLS
from core.interp.finetune.verdict import forgetting_report, skill_drops
from ui.lora import charts
from ui.lora.frames import accuracy_frame, learn_forget_frame, matrix_words, other_skills_frame, summary_frame


def _histories():
    before = dict.fromkeys(SKILLS, 1.0) | {"val_loss": 1.2, "ioi_logit_diff": 10.5, "task_accuracy": 0.25}
    after = before | {"induction_accuracy": 0.985, "fact_accuracy": 0.37, "task_accuracy": 1.0,
                      "val_loss": 1.8, "ioi_logit_diff": 8.2}
    return {"LoRA r=8": [(0, before), (150, after)]}


def _y_domain(spec: dict) -> list | None:
    return spec["spec"]["encoding"]["y"]["scale"].get("domain")


def test_accuracies_are_drawn_on_the_whole_0_to_1_range():
    frame = accuracy_frame(_histories())
    assert set(frame["skill"]) == {SKILL_LABELS[s] for s in ACCURACIES}
    spec = charts.accuracy_chart(frame, [SKILL_LABELS[s] for s in ACCURACIES]).to_dict()
    assert _y_domain(spec) == [0, 1] and "resolve" not in spec  # one shared, fixed axis
    others = other_skills_frame(_histories())
    assert set(others["skill"]) == {"IOI logit difference", "Validation loss"}
    spec = charts.other_skills_chart(others, ["IOI logit difference", "Validation loss"]).to_dict()
    assert spec["resolve"]["scale"]["y"] == "independent"  # not shares: each on its own scale


def test_learning_vs_forgetting_uses_the_verdicts_numbers_on_0_1_axes():
    report = forgetting_report({k: ("lora", h) for k, h in _histories().items()})
    frame = learn_forget_frame(report)
    assert frame.to_dict("records") == [{"run": "LoRA r=8", "learned": 1.0,
                                         "forgotten": report.lora.mean_drop}]
    assert abs(report.lora.mean_drop - (0.63 + 0.015) / 3) < 1e-9
    spec = charts.learn_forget_chart(frame).to_dict()
    assert spec["encoding"]["x"]["scale"]["domain"] == [0, 1]
    assert spec["encoding"]["y"]["scale"]["domain"] == [0, 1]


def test_matrices_get_plain_words():
    assert matrix_words("attn_qkv", "attn.c_attn") == "attention's query, key and value matrix"
    assert matrix_words("attn_qkv", "self_attn.v_proj") == "value matrix W_V"
    assert matrix_words("mlp_in", "mlp.gate_proj") == "MLP's gate matrix"
    assert matrix_words("mlp_out", "mlp.dense_4h_to_h") == "MLP's output matrix"


def test_the_before_after_table_reads_the_verdicts_skill_drops():
    histories = _histories()
    histories["LoRA r=8"][1][1]["ioi_accuracy"] = float("nan")  # not measured at the end: no cell
    table = summary_frame({k: skill_drops(h) for k, h in histories.items()})
    column = table["LoRA r=8"].to_dict()
    assert column["Facts accuracy"] == "1.00 → 0.37" and column["Validation loss"] == "1.20 → 1.80"
    assert column["New task accuracy"] == "0.25 → 1.00" and "IOI accuracy" not in column
    report = forgetting_report({k: ("lora", h) for k, h in histories.items()})
    assert {d.skill for d in report.lora.drops} == {"fact_accuracy", "induction_accuracy"}  # the same rule
