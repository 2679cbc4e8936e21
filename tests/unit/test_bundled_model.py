"""The committed bundled checkpoint meets its quality floors on FRESH samples (not the report's)."""

from __future__ import annotations

import json

import pytest

from core.bundled.evaluate import FLOORS
from core.interp.attention.head_scores import head_scores
from core.models import load_model
from core.models.loading import BUNDLED_DIR
from core.world import metrics as M
from core.world.datasets import fact_prompts, ioi_prompts, pronoun_prompts

SEED = 2024  # differs from the report's evaluation seed


@pytest.fixture(scope="module")
def lm():
    return load_model()


def floor(name):
    return FLOORS[name][0]


def test_ioi_on_heldout_templates(lm):
    m = M.ioi_metrics(lm, ioi_prompts(240, SEED, "heldout"))
    assert m["accuracy"] >= floor("ioi_accuracy")
    assert m["mean_logit_diff"] >= floor("ioi_logit_diff")


def test_induction_on_random_tokens(lm):
    assert M.induction_accuracy(lm, n=32, half_len=30, seed=SEED) >= floor("induction_accuracy")


def test_facts(lm):
    accuracy, wrong = M.fact_accuracy(lm, fact_prompts("train"))
    assert accuracy >= floor("fact_accuracy"), wrong


def test_pronoun_agreement(lm):
    m = M.pronoun_metrics(lm, pronoun_prompts(240, SEED))
    assert m["agreement"] >= floor("pronoun_agreement")


def test_previous_token_and_induction_heads_match_the_report(lm):
    scores = head_scores(lm, n=16, half_len=20, seed=SEED)
    report = json.loads((BUNDLED_DIR / "eval_report.json").read_text())
    for kind in ("previous_token", "induction"):
        found = scores.heads(kind, 0.5)
        assert found, kind
        layer, head, _ = scores.best(kind)
        assert f"{layer}.{head}" in {h["head"] for h in report["heads"][kind]}


def test_report_and_checkpoint_files():
    report = json.loads((BUNDLED_DIR / "eval_report.json").read_text())
    assert report["all_floors_pass"] is True
    assert report["vocab"]["unseen_token_ids"] == []
    log = json.loads((BUNDLED_DIR / "train_log.json").read_text())
    assert log["corpus"]["unseen_token_ids"] == [] and log["final_loss"] < 2.5
    total = sum(p.stat().st_size for p in BUNDLED_DIR.iterdir() if p.is_file())
    assert total < 20 * 2**20


def test_bundled_tokenizer_through_the_hooked_model(lm):
    text = "When Mary and John went to the store, John gave a drink to Mary."
    assert lm.to_str_tokens(text)[:3] == ["<|endoftext|>", "When", " Mary"]
    assert lm.to_string(lm.to_tokens(text)[0, 1:]) == text
    assert lm.unknown_words("Mary likes zebras") == ["likes", "zebras"]
    gen = lm.generate("The capital of France is", max_new_tokens=1, temperature=0)
    assert gen.new_text == " Paris"
