"""The Attention page's verdicts, each on constructed results that go each way, and the page's words
for them (ui only words what core decided)."""

from __future__ import annotations

import numpy as np

from core.interp.attention import verdicts as V
from ui.attention.heads import copying_words


def test_copying_verdict_goes_both_ways_and_compares_with_the_other_heads():
    copying = np.array([[0.1, -0.2], [0.9, V.COPYING_HIGH]])  # [layer, head]
    yes = V.copying_verdict(copying, [(1, 0), (1, 1)])
    assert yes.all_copy and yes.copying == (0.9, V.COPYING_HIGH)
    assert yes.others_median == np.median([0.1, -0.2])
    no = V.copying_verdict(copying, [(1, 0), (0, 1)])
    assert not no.all_copy
    assert V.copying_verdict(copying, []) is None
    everyone = V.copying_verdict(copying, [(0, 0), (0, 1), (1, 0), (1, 1)])
    assert everyone.others_median is None


def test_copying_verdict_carries_the_diagonal_measure_when_given():
    copying = np.array([[0.8, 0.0]])
    diagonal = {"median_rank": np.array([[1.0, 300.0]]), "top5": np.array([[0.97, 0.01]]), "n_vocab": 600}
    v = V.copying_verdict(copying, [(0, 0)], diagonal)
    assert v.median_rank == (1.0,) and v.top5 == (0.97,) and v.n_vocab == 600


def test_copying_words_say_what_the_verdict_says():
    copying = np.array([[0.9, 0.2]])
    said = copying_words(V.copying_verdict(copying, [(0, 0)]), "the report lists")
    assert said.startswith("**Yes, the induction heads copy") and "0.0: copying score +0.90" in said
    assert "median copying score: +0.20" in said
    weak = copying_words(V.copying_verdict(copying, [(0, 1)]), "score at least 0.5")
    assert weak.startswith("**Not every induction head copies strongly")
    assert "no induction head to check" in copying_words(None, "")


def test_first_token_share_moves_little_only_past_the_gap():
    raw = np.tril(np.ones((4, 4)))
    raw[1:, 0] = 0.8  # 80% raw attention on the first token
    weighted_low, weighted_same = raw.copy(), raw.copy()
    weighted_low[1:, 0] = 0.8 - V.SINK_GAP - 0.05
    weighted_same[1:, 0] = 0.8 - V.SINK_GAP + 0.05
    assert V.first_token_share(raw, weighted_low).moves_little
    share = V.first_token_share(raw, weighted_same)
    assert not share.moves_little and abs(share.raw - 0.8) < 1e-12
    assert V.first_token_share(raw[:2, :2], raw[:2, :2]) is None  # too short to say


def test_prompt_induction_verdict_goes_both_ways():
    share = np.array([[0.05, V.PROMPT_INDUCTION_HIGH]])
    scores = np.array([[0.9, 0.95]])
    at_work = V.prompt_induction_verdict(share, 12, scores, [(0, 0), (0, 1)])
    assert at_work.at_work and at_work.random_scores == (0.9, 0.95) and at_work.n_queries == 12
    idle = V.prompt_induction_verdict(share, 12, scores, [(0, 0)])
    assert not idle.at_work
    assert V.prompt_induction_verdict(share, 0, scores, [(0, 0)]) is None  # nothing repeats
    assert V.prompt_induction_verdict(share, 5, scores, []) is None


def test_listing_check_goes_both_ways():
    table = np.array([[0.1, 0.6], [0.49, 0.9]])
    same = V.check_listing("induction", table, [(1, 1), (0, 1)], 0.5)
    assert same.same and same.found == ((0, 1), (1, 1)) and same.best == (1, 1) and same.best_score == 0.9
    differ = V.check_listing("induction", table, [(1, 1)], 0.5)
    assert not differ.same
    assert V.heads_at_least(table, 0.5) == ((0, 1), (1, 1))
    assert V.heads_at_least(table, 0.95) == ()
