"""Forgetting metrics and fine-tuning tasks: the skill suite agrees with core.world.metrics, tasks are
made of words the bundled model knows, and fine-tuning on a changed fact teaches it while every
forgetting metric is recorded and finite."""

from __future__ import annotations

import math

import pytest
import torch

from core.interp.finetune.config import FinetuneConfig
from core.interp.finetune.forgetting import OLD_SKILLS, SKILLS, SkillSuite
from core.interp.finetune.packing import cycle_texts, pack_rows
from core.interp.finetune.tasks import NEW_NAME, TASKS, Probe, Task, make_task
from core.interp.finetune.training import FineTuner
from core.interp.finetune.verdict import FORGOT, SkillDrop, run_verdict, skill_drops
from core.models import act_name, load_model
from core.models.loading import BUNDLED_DIR
from core.world import metrics as M
from core.world.datasets import fact_prompts, ioi_prompts
from core.world.tokenizer import build_tokenizer

needs_bundled = pytest.mark.skipif(not (BUNDLED_DIR / "model.safetensors").is_file(),
                                   reason="the bundled checkpoint is absent (python -m core.bundled.train)")


@pytest.mark.parametrize("key", list(TASKS))
def test_tasks_use_only_words_the_bundled_tokenizer_knows(key):
    tok = build_tokenizer()
    task = make_task(key, seed=3)
    assert len(task.texts) >= 8 and task.probes
    for text in (*task.texts, *(p.prompt + p.target for p in task.probes)):
        assert tok.unk_token_id not in tok(text)["input_ids"], text
    for p in task.probes:  # every target is one token, so "top prediction" is well defined
        assert len(tok(p.target)["input_ids"]) == 1


def test_changed_fact_task_states_new_facts_and_lists_what_it_touches():
    task = make_task("changed_fact", n_items=2, seed=0)
    forward = [p for p in task.probes if p.before]
    assert len(forward) == 2 and len(task.texts) >= 8
    for p in forward:
        assert sum(f"{p.prompt}{p.target}." in t for t in task.texts) >= 4 and p.before != p.target
        country = p.prompt.split()[-2]
        assert {country, p.before.strip(), p.target.strip()} <= set(task.touched)


def test_story_style_and_new_word_tasks():
    style = make_task("story_style")
    assert all(p.target == " Then" and p.prompt.endswith(".") for p in style.probes)
    assert sum(t.count(". Then ") for t in style.texts) > 2 * len(style.texts)
    word = make_task("new_word")
    assert all(NEW_NAME in t for t in word.texts) and word.touched == (NEW_NAME,)
    assert {p.target for p in word.probes} == {" she", " her", " " + NEW_NAME}


def test_pack_rows_starts_every_row_with_bos(tiny_model_dir):
    lm = load_model(str(tiny_model_dir("gpt2")))
    rows = pack_rows(lm, ["the cat sat on the mat ."] * 9, seq_len=16)
    assert rows.shape == (4, 16)  # 9 documents of 8 tokens (BOS + 7): two per row, a half row dropped
    assert (rows[:, 0] == lm.tokenizer.bos_token_id).all() and (rows[:, 8] == lm.tokenizer.bos_token_id).all()
    with pytest.raises(ValueError, match="Not enough text"):
        pack_rows(lm, ["a dog"], seq_len=16)


def test_cycle_texts_repeats_shuffled_rounds_until_long_enough():
    texts = ["a b c", "d e", "f"]
    out = cycle_texts(texts, n_words=20, seed=0)
    assert sum(len(t.split()) + 2 for t in out) >= 20
    assert sorted(out[:3]) == sorted(texts) and sorted(out[3:6]) == sorted(texts)  # whole rounds
    assert out == cycle_texts(texts, n_words=20, seed=0) and out != cycle_texts(texts, n_words=20, seed=1)
    with pytest.raises(ValueError, match="No texts"):
        cycle_texts([], n_words=5, seed=0)


def test_skill_drops_signs_follow_worse():
    history = [(0, dict.fromkeys(SKILLS, 1.0)), (5, dict.fromkeys(SKILLS, 0.0)),
               (10, {**dict.fromkeys(SKILLS, 0.5), "val_loss": 2.0, "induction_accuracy": math.nan})]
    by = {d.skill: d for d in skill_drops(history)}  # first vs last: the middle measurement is not used
    assert by["ioi_accuracy"].drop == pytest.approx(0.5) and by["ioi_accuracy"].forgotten  # accuracy fell
    assert by["val_loss"].drop == pytest.approx(1.0)  # loss rose: worse, a positive drop
    assert not by["val_loss"].forgotten  # FORGOT is in points of accuracy: a loss has no such threshold
    assert "induction_accuracy" not in by  # NaN at the end: left out, never drawn as a number
    assert SkillDrop("val_loss", 2.0, 1.5).drop == pytest.approx(-0.5)  # loss fell: better
    assert SkillDrop("fact_accuracy", 0.5, 0.9).drop == pytest.approx(-0.4)  # accuracy rose: better
    assert not SkillDrop("fact_accuracy", 1.0, 1.0 - FORGOT / 2).forgotten
    assert SkillDrop("fact_accuracy", 1.0, 1.0 - FORGOT).forgotten
    assert skill_drops([]) == ()
    # the table and the verdicts read the same objects: a run's drops are skill_drops over OLD_SKILLS
    assert run_verdict("x", "lora", history).drops == skill_drops(history, OLD_SKILLS)


TINY_TASK = Task("tiny", "tiny", ("the cat sat on the mat .", "a dog ran home .", "Mary gave a cat to John"),
                 (Probe("the cat sat on the", " mat"), Probe("a dog ran", " home"), Probe("the dog", " sat"),
                  Probe("Mary gave a red", " zebra")))  # " zebra": not a word of the tiny vocabulary


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir("gpt2")))


def test_skill_suite_keeps_what_lm_single_token_id_accepts(tiny, monkeypatch):
    suite = SkillSuite.build(tiny, TINY_TASK, n_val_rows=2, seq_len=16)
    assert suite.task.prompts == ("the cat sat on the", "a dog ran", "the dog")  # " zebra" is unknown
    assert suite.task.answers.tolist() == [tiny.single_token_id(w) for w in (" mat", " home", " sat")]
    real = tiny.single_token_id
    monkeypatch.setattr(tiny, "single_token_id", lambda word: None if word == " home" else real(word))
    suite = SkillSuite.build(tiny, TINY_TASK, n_val_rows=2, seq_len=16)
    assert suite.task.prompts == ("the cat sat on the", "the dog")  # the model's own rule decides
    assert all(p.io.strip() in ("Mary", "John") and p.s.strip() in ("Mary", "John") for p in suite.ioi)


def test_skill_suite_measures_a_hooked_lm_one_prompt_at_a_time_by_hand(tiny):
    suite = SkillSuite.build(tiny, TINY_TASK, n_val_rows=2, seq_len=16)
    got = suite.measure(tiny)
    hits = [int(tiny(tiny.to_tokens(p))[0, -1].argmax()) == int(a)
            for p, a in zip(suite.task.prompts, suite.task.answers, strict=True)]  # unpadded, one by one
    assert got["task_accuracy"] == pytest.approx(sum(hits) / len(hits))
    rows = suite.validation
    logits = tiny.model(input_ids=rows, use_cache=False).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), rows[:, 1:].flatten())
    assert got["val_loss"] == pytest.approx(float(loss), rel=1e-5)
    assert math.isnan(got["fact_accuracy"]) == (suite.facts is None)
    assert 0 <= got["induction_accuracy"] <= 1
    # the hooks active around measure() apply, as on every other page: the last block's output zeroed
    last = act_name("resid_post", tiny.cfg.n_layers - 1)
    with tiny.hooks([(last, lambda act, hook: torch.zeros_like(act))]):
        ablated = suite.measure(tiny)
        by_hand = float(tiny.loss(rows))
    assert ablated["val_loss"] == pytest.approx(by_hand, rel=1e-6)
    assert ablated["val_loss"] != pytest.approx(got["val_loss"], rel=1e-3)


@pytest.fixture(scope="module")
def bundled():
    return load_model()  # the tests using it skip only when the checkpoint file is absent


@needs_bundled
def test_skill_suite_agrees_with_the_bundled_metrics(bundled):
    lm = bundled
    task = make_task("changed_fact", seed=0)
    suite = SkillSuite.build(lm, task, n_ioi=48, n_induction=16, half_len=20, seed=5)
    got = suite.measure(lm)
    ioi = M.ioi_metrics(lm, ioi_prompts(48, seed=5, split="heldout"))
    assert got["ioi_accuracy"] == pytest.approx(ioi["accuracy"])
    assert got["ioi_logit_diff"] == pytest.approx(ioi["mean_logit_diff"], abs=1e-4)
    touched = set(task.touched)
    kept = [f for f in fact_prompts("train")
            if not touched & set((f.prompt + f.answer).replace(".", " ").split())]
    assert 0 < len(kept) < len(fact_prompts("train"))
    assert got["fact_accuracy"] == pytest.approx(M.fact_accuracy(lm, kept)[0])
    assert got["induction_accuracy"] == pytest.approx(M.induction_accuracy(lm, n=16, half_len=20, seed=5))
    rows = suite.validation
    logits = lm(rows)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), rows[:, 1:].flatten())
    assert got["val_loss"] == pytest.approx(float(loss), rel=1e-5)
    # the bundled model has the skills the curves start from
    assert got["ioi_accuracy"] > 0.9 and got["fact_accuracy"] > 0.9 and got["val_loss"] < 3


@needs_bundled
def test_fine_tuning_on_a_changed_fact_teaches_it_and_records_forgetting(bundled):
    lm = bundled
    task = make_task("changed_fact", n_items=2, seed=0)
    suite = SkillSuite.build(lm, task, n_ioi=32, n_induction=8)
    cfg = FinetuneConfig(steps=30, batch=8, lr=3e-3, eval_every=10, train_rows=64)
    ft = FineTuner(cfg).fit(lm, task, suite)
    assert ft.finished_ and [s for s, _ in ft.history_] == [0, 10, 20, 30]
    for _, skills in ft.history_:
        assert set(skills) == set(SKILLS) and all(math.isfinite(v) for v in skills.values())
    for probe in (p for p in task.probes if p.before):  # the model now states the new capital
        logits = ft.model_(ft.model_.to_tokens(probe.prompt))[0, -1]
        assert lm.tokenizer.decode([int(logits.argmax())]) == probe.target
        base = lm(lm.to_tokens(probe.prompt))[0, -1]
        assert lm.tokenizer.decode([int(base.argmax())]) == probe.before  # and the base one still doesn't
    first, last = ft.history_[0][1], ft.history_[-1][1]
    assert first["task_accuracy"] < 1.0 and last["task_accuracy"] == 1.0
    assert ft.losses_[-1] < ft.losses_[0] / 2
