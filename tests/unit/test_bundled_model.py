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


# -- the page's heads chart: the outline rule and its caption are one rule ---------------------------
def _rep(scores: dict, heads: dict) -> dict:
    return {"head_scores": scores, "heads": heads}


def test_outlined_cells_are_exactly_those_at_or_above_the_threshold():
    from core.bundled.evaluate import HEAD_THRESHOLD
    from core.bundled.report import load_report
    from ui.bundled_model.frames import head_score_frame

    rep = load_report(BUNDLED_DIR)
    frame = head_score_frame(rep, HEAD_THRESHOLD)
    assert (frame["marked"] == (frame["score"] >= HEAD_THRESHOLD)).all()
    local = frame[frame["kind"] == "local window"]
    assert local[local["score"] > 0.6]["marked"].all()  # the audit's 0.96, 0.71, 0.70, 0.68 are outlined
    assert frame["marked"].any() and not frame["marked"].all()


def test_the_caption_counts_the_outlined_cells_and_checks_the_listing_both_ways():
    from ui.bundled_model.views import heads_caption

    scores = {"induction": [[0.1, 0.9], [0.5, 0.2]], "local_window": [[0.7, 0.1], [0.2, 0.3]]}
    agree = heads_caption(_rep(scores, {"induction": [{"head": "0.1"}, {"head": "1.0"}]}), 0.5)
    assert "the 3 outlined cells score at least 0.5" in agree
    assert "For induction they are exactly the heads the evaluation report lists." in agree
    assert "The report lists no heads for local window; that panel is shown for comparison." in agree
    assert "previous or the current token" not in agree  # no previous- or current-token panel to check
    differ = heads_caption(_rep(scores, {"induction": [{"head": "0.1"}]}), 0.5)
    assert "For induction the report lists 0.1, but 0.1, 1.0 reach 0.5 here." in differ
    assert "exactly" not in differ
    stricter = heads_caption(_rep(scores, {"induction": [{"head": "0.1"}]}), 0.8)
    assert "the 1 outlined cells score at least 0.8" in stricter and "exactly" in stricter


def test_the_caption_on_the_shipped_report():
    from core.bundled.evaluate import HEAD_THRESHOLD
    from core.bundled.report import load_report
    from ui.bundled_model.frames import head_score_frame
    from ui.bundled_model.views import heads_caption

    rep = load_report(BUNDLED_DIR)
    n = int(head_score_frame(rep, HEAD_THRESHOLD)["marked"].sum())
    caption = heads_caption(rep, HEAD_THRESHOLD)
    assert f"the {n} outlined cells score at least {HEAD_THRESHOLD:g}" in caption
    assert "exactly the heads the evaluation report lists" in caption


def test_the_local_window_remark_appears_only_for_outlined_previous_or_current_token_heads():
    from ui.bundled_model.views import heads_caption, narrow_local_heads

    local = [[0.7, 0.1], [0.2, 0.9]]  # heads 0.0 and 1.1 reach 0.5 on the local window
    prev_on_00 = {"local_window": local, "previous_token": [[0.8, 0.0], [0.1, 0.1]],
                  "current_token": [[0.1, 0.1], [0.1, 0.2]]}
    applies = heads_caption(_rep(prev_on_00, {"previous_token": [{"head": "0.0"}]}), 0.5)
    assert ("(a head that looks at the previous or the current token also scores on the local window: 0.0 "
            "does here)") in applies
    current_too = dict(prev_on_00, current_token=[[0.1, 0.1], [0.1, 0.6]])
    both = heads_caption(_rep(current_too, {"previous_token": [{"head": "0.0"}]}), 0.5)
    assert "local window: 0.0, 1.1 do here)" in both
    elsewhere = dict(prev_on_00, previous_token=[[0.1, 0.8], [0.1, 0.1]])  # its previous-token head is 0.1
    words = heads_caption(_rep(elsewhere, {"previous_token": [{"head": "0.1"}]}), 0.5)
    assert "The report lists no heads for local window" in words
    assert "previous or the current token" not in words
    assert narrow_local_heads({"local_window": ((0, 0),), "previous_token": ((0, 1),)}) == []


def test_the_floors_name_the_threshold_the_pages_use_and_match_the_committed_report():
    from core.bundled.evaluate import HEAD_THRESHOLD
    from core.bundled.report import load_report
    from core.interp.attention.patterns import TYPE_THRESHOLD

    assert HEAD_THRESHOLD == TYPE_THRESHOLD
    assert FLOORS["induction_heads"][1] == f"heads with induction score >= {TYPE_THRESHOLD:g}"
    rep = load_report(BUNDLED_DIR)  # the committed report's text is the text the code writes today
    assert {name: f["what"] for name, f in rep["floors"].items()} == {k: v[1] for k, v in FLOORS.items()}
