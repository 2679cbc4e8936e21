"""The MLP neurons & weights page through app.py: every view, bad input, the knock-out hand-off to
the Residual stream page, and the prediction."""

from __future__ import annotations

import re

import pytest

from tests.app.helpers import open_page, texts
from ui.common.interventions import KEY
from ui.neurons.views import VIEWS

PAGE = "app_pages/neurons.py"


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_opens_on_the_bundled_model(view):
    at = open_page(PAGE, query={"nrn_view": view}, timeout=300)
    shown = texts(at)
    expected = {"Neuron": "fires hardest", "Explain & score": "Type a rule first",
                "Knock-out": "nats per token", "Head circuits": "Its first direction holds",
                "Composition": "**The previous-token → induction K-composition stands out**",
                "Direct path": "the direct path predicts the current token itself"}[view]
    assert expected in shown, shown[-1500:]


def test_the_page_opens_on_a_neuron_its_best_label_explains():
    at = open_page(PAGE, query={"nrn_view": "Explain & score"}, timeout=300)
    best = next(b for b in at.button if b.key == "nrn_sugg_0")
    rule = best.label.rsplit(" (", 1)[0]
    best.click().run()
    assert at.text_input(key="nrn_rule").value == rule
    shown = texts(at)
    assert "**explains** when the neuron fires" in shown, shown[-1200:]
    auroc = float(metric(at, "AUROC"))
    assert auroc >= 0.85 and abs(float(metric(at, "Random rule, same size")) - 0.5) < 0.1


def test_a_rule_is_scored_and_bad_rules_get_a_message():
    at = open_page(PAGE, query={"nrn_view": "Explain & score", "nrn_layer": "0", "nrn_neuron": "272"})
    at.text_input(key="nrn_rule").set_value("object").run()
    assert "**explains** when the neuron fires" in texts(at) and float(metric(at, "AUROC")) > 0.9
    for bad, message in (("", "Type a rule first"), ("colr", "Did you mean 'colour'"),
                         ("name and", "ends too early")):
        at.text_input(key="nrn_rule").set_value(bad).run()
        assert not at.exception and message in texts(at), bad
        assert at.text_input(key="nrn_rule").value == bad  # what was typed stays
    at.text_input(key="nrn_rule").set_value("word zebra").run()
    assert "too few or too many to score" in texts(at)


@pytest.mark.parametrize("key,value,message", [
    ("nrn_layer", "9", "Layer 9 does not exist: this model has 4 layers, numbered 0 to 3"),
    ("nrn_layer", "-1", "Layer -1 does not exist"),
    ("nrn_neuron", "512", "Neuron 512 does not exist: layer 3 has 512 neurons, numbered 0 to 511"),
])
def test_a_layer_or_neuron_out_of_range_is_explained(key, value, message):
    at = open_page(PAGE, query={key: value})
    assert not at.exception and message in texts(at)


def test_a_typed_layer_out_of_range_keeps_the_page_running():
    at = open_page(PAGE)
    at.number_input(key="nrn_layer").set_value(7).run()
    assert "Layer 7 does not exist" in texts(at)
    at.number_input(key="nrn_layer").set_value(1).run()
    assert "does not exist" not in texts(at) and "Layer 1's MLP" in texts(at)


def test_knock_out_can_stay_on_for_the_residual_page():
    at = open_page(PAGE, query={"nrn_view": "Knock-out", "nrn_layer": "0", "nrn_neuron": "272"})
    assert re.search(r"Setting neuron L0 N272 to 0 ", texts(at))
    toggle = next(t for t in at.toggle if t.key.startswith("nrn_keep_0_272"))
    toggle.set_value(True).run()
    assert "neuron L0 N272 (zero ablation)" in at.session_state[KEY]
    at.switch_page("app_pages/residual.py").run()
    shown = texts(at)
    assert "1 intervention switched on" in shown and "L0 N272" in shown


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("view", ["Neuron", "Explain & score", "Knock-out", "Head circuits", "Composition"])
def test_views_open_on_hub_families(tiny_model_dir, arch, view):
    at = open_page(PAGE, query={"model": str(tiny_model_dir(arch)), "nrn_view": view, "nrn_layer": "1"},
                   timeout=300)
    shown = texts(at)
    assert "the bundled world's stories as text" in shown
    expected = {"Neuron": "fires hardest", "Explain & score": "Type a rule first",
                "Knock-out": "nats per token", "Head circuits": "Its first direction holds",
                "Composition": "Shuffled-weight baseline"}[view]
    assert expected in shown, shown[-1200:]
    if arch == "llama" and view == "Neuron":
        assert "Gate and up separately" in shown and "matches the model's own activation" in shown


def test_pasted_text_for_a_hub_model(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2")), "nrn_layer": "0"})
    at.radio(key="nrn_source").set_value("text").run()
    assert "Paste some text first" in texts(at)
    at.text_area(key="nrn_text").set_value("the cat sat on the mat and the dog ran home . " * 20).run()
    assert not at.exception and "read on your text" in texts(at)


def test_the_prediction_is_locked_and_graded():
    at = open_page(PAGE, predict=True, query={"nrn_layer": "0", "nrn_neuron": "272"})
    assert "Which rule describes neuron L0 N272 best" in texts(at) and not at.tabs
    options = at.radio(key="nrn_predict_answer").options
    assert "object" in options and len(options) >= 2
    at.radio(key="nrn_predict_answer").set_value("object")
    next(b for b in at.button if b.label == "Lock my prediction").click().run()
    assert not at.exception
    shown = texts(at).replace("\\", "")
    assert "**You predicted:** object" in shown
    assert "'object' scores best" in shown and ":material/check: right" in shown
    assert at.tabs
