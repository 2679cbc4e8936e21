"""The SAE's ground-truth verdict, on constructed results that go each way: one "found" threshold
(FOUND_AUROC), used by the headline, the chart and every sentence of "what to notice"."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core.interp.sae.features import GroundTruthMatch
from core.interp.sae.verdict import (
    FOUND_AUROC,
    NEAR_MISS,
    POOR_PRECISION,
    findings,
    is_found,
    status,
    sweep_verdict,
)
from ui.sae.charts import ground_truth_chart
from ui.sae.frames import matches_frame
from ui.sae.views import notice_lines, sweep_lines


def m(attribute: str, auroc: float, precision: float = 0.9, n_tokens: int = 50, recall: float = 0.8
      ) -> GroundTruthMatch:
    return GroundTruthMatch(attribute, n_tokens, 7, auroc, precision, recall, is_found(auroc))


def test_found_starts_exactly_at_the_threshold():
    assert is_found(FOUND_AUROC) and not is_found(FOUND_AUROC - 1e-9) and not is_found(float("nan"))
    assert status(FOUND_AUROC, 10) == "found"
    assert status(FOUND_AUROC - NEAR_MISS / 2, 10) == "near miss"
    assert status(FOUND_AUROC - 2 * NEAR_MISS, 10) == "not found"
    assert status(0.99, 0) == "absent" and status(float("nan"), 10) == "absent"


def test_places_at_0_899_is_a_near_miss_and_never_reads_as_found():
    # the learner walkthrough: places scored 0.899, its bar read "0.90", the text said "found"
    f = findings([m("colours", 0.97), m("places", 0.899), m("digits", 0.71)])
    assert [x.attribute for x in f.found] == ["colours"] and f.n_found == 1
    assert [x.attribute for x in f.near_misses] == ["places"]
    frame = matches_frame([m("places", 0.899)])
    assert frame.loc[0, "status"] == "near miss" and frame.loc[0, "label"] == "#7  0.899"
    words = " ".join(notice_lines(f, bundled=True))
    assert "gives 1 of the 3 word lists" in words and "colours (0.970)" in words
    assert "Just under the line: places (0.899)" in words


def test_the_words_follow_the_result_the_other_way_too():
    f = findings([m("colours", 0.95), m("places", 0.93), m("positive words", 0.98), m("digits", 0.6)])
    words = " ".join(notice_lines(f, bundled=True))
    assert "gives 3 of the 4 word lists" in words and "places (0.930)" in words
    assert "Just under" not in words and "Hardest here: digits (0.600)" in words
    none = " ".join(notice_lines(findings([m("colours", 0.8), m("places", 0.85)]), bundled=True))
    assert "gives none of the 2 word lists" in none and "the closest is places (0.850)" in none


def test_imprecise_hardest_and_absent_go_each_way():
    f = findings([m("capitals", 0.95, precision=POOR_PRECISION - 0.2), m("colours", 0.99, precision=0.9),
                  m("female names", 0.75, recall=0.2), m("male names", 0.76, recall=0.3), m("digits", 0.80),
                  m("objects", 0.85), m("countries", float("nan"), n_tokens=0)])
    assert [x.attribute for x in f.imprecise] == ["capitals"]
    assert [x.attribute for x in f.hardest] == ["female names", "male names", "digits"]
    assert f.names_hardest and [x.attribute for x in f.absent] == ["countries"]
    assert (f.n_found, f.n_present, f.n_total) == (2, 6, 7)
    words = " ".join(notice_lines(f, bundled=True))
    assert "Careful with capitals (0.950, precision 30%)" in words
    assert "colours" not in words.split("Careful")[1]
    assert [x.attribute for x in f.narrow] == ["female names", "male names"]
    assert "The best feature for female names is narrow: it fires on only 20% of their tokens" in words
    assert "In this world a name's gender shows only in the pronouns" in words
    assert "1 of the lists has no single-token words" in words
    assert "In this world" not in " ".join(notice_lines(f, bundled=False))  # a fact about the bundled world
    other = findings([m("female names", 0.95), m("male names", 0.76), m("digits", 0.7), m("objects", 0.8)])
    assert not other.names_hardest and not other.imprecise and not other.absent and not other.narrow
    assert "narrow" not in " ".join(notice_lines(other, bundled=True))
    broad = findings([m("female names", 0.7, precision=0.2, recall=0.3), m("male names", 0.72, recall=0.9),
                      m("colours", 0.95)])
    assert broad.names_hardest and not broad.narrow  # missed, but not by narrow features
    assert "In this world" not in " ".join(notice_lines(broad, bundled=True))


@pytest.mark.parametrize(("l0", "found", "trend"), [
    ([2, 5, 10, 20, 40], [1, 2, 3, 4, 5], "sparser finds fewer"),
    ([2, 5, 10, 20, 40], [5, 4, 3, 2, 1], "sparser finds more"),
    ([2, 5, 10, 20, 40], [3, 1, 4, 1, 3], "no clear trend"),
    ([2, 5, 10, 20, 40], [3, 3, 3, 3, 3], "no clear trend"),
    ([2, 5], [1, 4], "too few SAEs"),
])
def test_the_sweep_verdict_goes_each_way(l0, found, trend):
    v = sweep_verdict(l0, found)
    assert v.trend == trend
    assert v.sparsest == (float(min(l0)), found[l0.index(min(l0))])
    words = " ".join(sweep_lines(v, "L1 coefficient"))
    if trend == "sparser finds fewer":
        assert words.startswith("The sparser the SAE, the fewer") and "sparsest SAE (L0 2.0) found 1" in words
    elif trend == "sparser finds more":
        assert words.startswith("The sparser the SAE, the more")
    elif trend == "no clear trend":
        assert "fewer" not in words and "more attributes" not in words
    else:
        assert math.isnan(v.rho) and words.startswith("Run the sweep")
    with pytest.raises(ValueError):
        sweep_verdict([], [])


def test_the_sweep_words_weigh_the_dense_ends_precision_each_way():
    plain = sweep_verdict([2, 5, 10, 20, 40], [1, 2, 3, 4, 9])
    caveat = sweep_verdict([2, 5, 10, 20, 40], [1, 2, 3, 4, 9], imprecise=[0, 0, 1, 2, 6])
    assert caveat.densest_imprecise == 6 and plain.densest_imprecise == 0
    assert "But 6 of the densest SAE's 9 rest on a feature whose precision is under 50%" in " ".join(
        sweep_lines(caveat, "L1 coefficient"))
    assert "But" not in " ".join(sweep_lines(plain, "L1 coefficient"))


def test_the_sweep_causes_are_hypotheses_checked_on_the_measured_features_each_way():
    l0, found = [2, 5, 10, 20, 40], [1, 2, 3, 4, 5]  # sparser finds fewer
    split = sweep_verdict(l0, found, missed=[9, 8, 7, 6, 5], narrow=[4, 1, 0, 0, 0])
    assert (split.sparsest_missed, split.sparsest_narrow) == (9, 4)
    words = " ".join(sweep_lines(split, "L1 coefficient"))
    assert "A hypothesis to check, feature splitting" in words
    assert "Of the 9 lists the sparsest SAE misses, 4 have a narrow best feature (it fires on under 50%" \
        in words and "which is what it predicts" in words
    assert "One known reason" not in words
    no_split = sweep_verdict(l0, found, missed=[9, 8, 7, 6, 5], narrow=[0, 3, 0, 0, 0])  # narrow elsewhere
    words = " ".join(sweep_lines(no_split, "L1 coefficient"))
    assert "but none of its 9 lists missed has one, so this sweep does not point to it" in words
    assert "which is what it predicts" not in words
    l0, found = [2, 5, 10, 20, 40], [5, 4, 3, 2, 1]  # sparser finds more
    spread = sweep_verdict(l0, found, missed=[5, 6, 7, 8, 1], broad=[0, 0, 0, 0, 1])
    assert (spread.densest_missed, spread.densest_broad) == (1, 1)
    words = " ".join(sweep_lines(spread, "L1 coefficient"))
    assert "A hypothesis to check: a denser SAE spreads a list" in words
    assert "Of the 1 list the densest SAE misses, 1 has a best feature whose precision is under 50%" in words
    assert "Denser SAEs spread a list" not in words
    no_spread = sweep_verdict(l0, found, missed=[5, 6, 7, 8, 9], broad=[2, 0, 0, 0, 0])
    words = " ".join(sweep_lines(no_spread, "L1 coefficient"))
    assert "but none of its 9 lists missed has one, so this sweep does not point to it" in words
    assert "which fits it" not in words


def test_missed_lists_are_sorted_into_narrow_and_broad_best_features():
    f = findings([m("colours", 0.95), m("places", 0.89, recall=0.3), m("digits", 0.7, precision=0.2),
                  m("objects", 0.6, precision=0.9, recall=0.9), m("capitals", 0.95, recall=0.1)])
    assert [x.attribute for x in f.missed_narrow] == ["places"]  # found lists never count as missed
    assert [x.attribute for x in f.missed_broad] == ["digits"]


def test_the_chart_draws_the_verdicts_threshold_and_colours():
    frame = matches_frame([m("colours", 0.97), m("places", 0.899), m("digits", 0.7),
                           m("countries", float("nan"), n_tokens=0)])
    spec = ground_truth_chart(frame).to_dict()
    rules = [layer for layer in spec["layer"] if layer["mark"]["type"] == "rule"]
    assert len(rules) == 1
    datasets = spec["datasets"]
    rule_data = datasets[rules[0]["data"]["name"]]
    assert rule_data[0]["t"] == FOUND_AUROC
    bars = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "bar")
    assert bars["encoding"]["color"]["scale"]["domain"] == ["found", "near miss", "not found", "absent"]
    assert list(frame["status"]) == ["found", "near miss", "not found", "absent"]
    assert pd.isna(frame.loc[3, "auroc"]) and frame.loc[3, "label"] == "no single-token words"
