"""Every verdict of the Residual stream page, on constructed results that go each way, and the ground
truth on the bundled model checked against its evaluation report."""

from __future__ import annotations

import numpy as np
import pytest

from core.bundled.report import load_report, report_heads
from core.interp.residual import verdicts as V
from core.interp.residual.anatomy import StreamAnatomy
from core.interp.residual.dla import DLAResult
from core.interp.residual.ground_truth import task_truth
from core.interp.residual.tasks import task_set
from core.models import load_model
from core.models.loading import BUNDLED_DIR

LAYERS = (-1, 0, 1, 2, 3)


def test_first_readable_needs_the_answer_to_stay_on_top():
    assert V.first_readable([0, 0, 1, 1, 1], LAYERS) == 1
    assert V.first_readable([0, 1, 0, 1, 1], LAYERS) == 2  # on top at 0, lost at 1: counts from 2
    assert V.first_readable([1, 1, 1, 1, 1], LAYERS) == -1
    assert V.first_readable([0, 0, 0, 0, 0], LAYERS) is None
    assert V.first_readable([0.2, 0.4, 0.5, 0.9, 1.0], LAYERS) == 1  # READABLE_SHARE = 0.5


def test_readability_counts_prompts_with_the_answer_on_top():
    top1 = np.array([[1, 2], [1, 2], [3, 2], [3, 4], [3, 4]])  # [point, batch]
    r = V.readability(top1, np.zeros_like(top1, dtype=float), [3, 4], LAYERS)
    np.testing.assert_allclose(r.share_top, [0, 0, 0.5, 1, 1])
    assert r.first_layer == 1 and r.n_prompts == 2


def dla(head_table, total, values=None, error=0.0):
    head_table = np.asarray(head_table, dtype=float)
    values = np.array([*head_table.flatten(), total - head_table.sum() + error]) if values is None else values
    labels = tuple(f"head {i}" for i in range(head_table.size)) + ("rest",)
    kinds = ("head",) * head_table.size + ("mlp",)
    return DLAResult("a", "b", labels, kinds, (0,) * len(labels), (0,) * len(labels), values, total,
                     head_table, np.array([0.0, total]), (-1, 0), 1)


def test_writers_are_heads_with_a_big_share_and_heads_against_are_named():
    r = dla([[0.1, 5.0], [-3.0, 1.0]], total=4.0)
    w = V.writers(r)
    assert w.heads == ((0, 1), (1, 1)) and w.against == ((1, 0),)
    assert w.threshold == pytest.approx(V.WRITER_FRACTION * 6.1)
    assert w.heads_share == pytest.approx(6.0 / 4.0)
    quiet = V.writers(dla([[-0.1, -0.2]], total=1.0))
    assert quiet.heads == () and quiet.against == ()


def test_head_check_says_how_many_writers_the_report_lists():
    found = V.writers(dla([[0.0, 5.0], [4.0, 0.0]], total=9.0))  # writers (0, 1), (1, 0)
    assert V.check_heads(found, {"induction": [(0, 1, 0.9), (1, 0, 0.8)]}).verdict == "all_listed"
    some = V.check_heads(found, {"induction": [(0, 1, 0.9)], "previous_token": [(3, 3, 0.7)]})
    assert some.verdict == "some_listed" and some.unlisted == ((1, 0),)
    assert some.listed_as == {(0, 1): ("induction",)}
    assert V.check_heads(found, {"induction": [(2, 2, 0.9)]}).verdict == "none_listed"
    assert V.check_heads(V.writers(dla([[-1.0]], 1.0)), {}).verdict == "no_writers"


def test_lens_comparison_names_the_layers_the_logit_lens_misreads():
    c = V.compare_lenses(LAYERS, [9.0, 3.0, 1.5, 0.4, 0.0], [2.0, 1.0, 1.0, 0.3, 0.0])
    assert c.misread == (-1, 0) and c.tuned_better_everywhere
    worse = V.compare_lenses(LAYERS, [1.0, 1.0, 1.0, 1.0, 0.0], [1.2, 0.5, 0.5, 0.5, 0.0])
    assert worse.misread == () and not worse.tuned_better_everywhere


def test_parts_sum_check_goes_both_ways():
    assert V.parts_sum_exactly(dla([[1.0, 2.0]], total=5.0))
    assert not V.parts_sum_exactly(dla([[1.0, 2.0]], total=5.0, error=0.01))


def anatomy(gap, cos_input):
    n = len(cos_input)
    return StreamAnatomy(tuple(f"w{i}" for i in range(n)), ("embed",) + ("attn",) * (n - 1), (None,) * n,
                         np.arange(1, n + 1, dtype=float), np.ones(n), np.ones(n), np.array(cos_input),
                         np.zeros(n), gap, 3)


def test_anatomy_verdict_goes_both_ways():
    v = V.anatomy_verdict(anatomy(1e-8, [np.nan, 0.1, -0.6]))
    assert v.exact_sum and v.largest == "w2" and v.erasers == ("w2",)
    v = V.anatomy_verdict(anatomy(0.2, [np.nan, 0.1, 0.2]))
    assert not v.exact_sum and v.erasers == ()


# -- ground truth on the bundled model -------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled():
    return load_model()


def test_induction_is_written_by_the_heads_the_report_lists(bundled):
    truth = task_truth(bundled, task_set(bundled, "induction"))
    listed = report_heads(load_report(BUNDLED_DIR))
    check = V.check_heads(truth.writers, listed)
    assert check.verdict == "all_listed", (truth.writers, listed)
    assert all("induction" in kinds for kinds in check.listed_as.values())
    assert truth.dla.error < 1e-4
    assert truth.logit.first_layer == bundled.cfg.n_layers - 1  # readable only after the last block


def test_ioi_answer_becomes_readable_and_is_written_by_a_last_layer_head(bundled):
    truth = task_truth(bundled, task_set(bundled, "ioi"))
    assert truth.logit.share_top[-1] > 0.95  # the model answers IOI
    assert truth.logit.first_layer is not None
    assert truth.writers.heads and all(layer == bundled.cfg.n_layers - 1 for layer, _ in truth.writers.heads)
