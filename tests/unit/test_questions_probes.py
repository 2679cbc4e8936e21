"""The Probes page's question: "at which layer does a probe first reach 90%?", graded both ways on
constructed reports, and the page's question registered for the page."""

from __future__ import annotations

import numpy as np

from core.interp.probes.verdicts import READABLE_AT
from core.models.hook_names import EMBEDDINGS
from core.notebook.questions import Prediction, questions_for
from core.notebook.questions.probes import FIRST_READABLE
from tests.unit.test_probes_verdict import _report


def _grade(report, answer):
    return FIRST_READABLE.grade(report, Prediction(FIRST_READABLE.id, answer, 0.7))


def test_the_first_layer_reaching_the_threshold_is_right_and_others_are_not():
    r = _report([0.5, 0.6, READABLE_AT + 0.02, 0.99])  # layers: embed, 0, 1, 2
    right = _grade(r, 1)
    assert right.correct and right.measured == "layer 1 first reaches 0.90 (0.92; layer 0: 0.60)"
    later = _grade(r, 2)  # readable there too, but not first
    assert not later.correct and later.detail == "layer 2 scores 0.99"
    early = _grade(r, EMBEDDINGS)
    assert not early.correct and early.detail == "the embeddings scores 0.50"


def test_the_embeddings_can_be_the_answer():
    r = _report([0.95, 0.97, 0.99])
    assert _grade(r, EMBEDDINGS).correct
    assert _grade(r, EMBEDDINGS).measured == "the embeddings first reaches 0.90 (0.95)"
    assert not _grade(r, 0).correct


def test_when_no_layer_reaches_it_every_answer_is_wrong_and_the_best_is_named():
    r = _report([0.5, 0.8, 0.85])
    for answer in r.layers:
        grade = _grade(r, answer)
        assert not grade.correct
        assert grade.measured == "no layer reaches 0.90 held-out accuracy (the best: layer 1, 0.85)"


def test_a_layer_the_report_does_not_have_is_wrong_and_said_so():
    r = _report([0.5, 0.95])
    grade = _grade(r, 7)
    assert not grade.correct and grade.detail == "layer 7 is not probed here"


def test_the_question_belongs_to_the_probes_page_and_names_its_fields():
    assert FIRST_READABLE in questions_for("probes") and FIRST_READABLE.kind == "layer"
    text = FIRST_READABLE.ask(site="residual stream", threshold="90% held-out accuracy",
                              property="Sentiment")
    assert text == ("At which layer does a probe on the residual stream first reach 90% held-out "
                    "accuracy on **Sentiment**?")
    assert np.isclose(READABLE_AT, 0.9)
