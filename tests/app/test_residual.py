"""The Residual stream page through app.py: every view, bad input, interventions, the prediction."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.app.helpers import open_page, texts
from ui.common.interventions import KEY, NeuronAblation, Steering
from ui.residual.views import VIEWS

PAGE = "app_pages/residual.py"


def metric(at, start: str) -> float:
    return float(next(m.value for m in at.metric if m.label.startswith(start)))


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_opens_on_the_bundled_model(view):
    at = open_page(PAGE, query={"res_view": view}, timeout=180)
    shown = texts(at)
    expected = {"Logit lens": "is the top prediction at the last token from **layer 3**",
                "Tuned lens": "The tuned lens learns one small affine map per layer",
                "Direct logit attribution": "The parts add up to the model's own logit difference",
                "Stream anatomy": "the stream is exactly this sum",
                "Ground truth": "**The evaluation report agrees**"}[view]
    assert expected in shown, shown[-1500:]


def test_dla_shows_the_parts_summing_to_the_models_logit_difference():
    at = open_page(PAGE, query={"res_view": "Direct logit attribution"})
    total, parts = metric(at, "logit("), metric(at, "Sum of the parts")
    assert total == pytest.approx(parts, abs=1e-4) and total > 3
    assert "Heads writing ' Mary' directly" in texts(at)
    at.text_input(key="res_answer").set_value(" John").run()
    at.text_input(key="res_other").set_value(" Mary").run()
    assert metric(at, "logit(") == pytest.approx(-total, abs=1e-3)


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neox", "llama"])
@pytest.mark.parametrize("view", ["Logit lens", "Direct logit attribution", "Stream anatomy", "Ground truth"])
def test_views_open_on_hub_families(tiny_model_dir, arch, view):
    at = open_page(PAGE, query={"model": str(tiny_model_dir(arch)), "res_view": view,
                                "res_prompt": "the cat sat on the mat and the dog", "res_answer": " cat",
                                "res_other": " dog"})
    shown = texts(at)
    assert {"Logit lens": "Under the logit lens", "Direct logit attribution": "The parts add up",
            "Stream anatomy": "The largest write is",
            "Ground truth": "Induction (repeated random tokens): 64 prompts"}[view] in shown, shown[-1000:]
    if view == "Ground truth":  # the tiny vocabulary has too few names for IOI prompts: said so
        assert "No IOI prompt has single-token names" in shown
        assert "evaluation report" not in shown  # only the bundled model has one
    if view == "Direct logit attribution":
        assert metric(at, "logit(") == pytest.approx(metric(at, "Sum of the parts"), abs=1e-4)


def test_tuned_lens_trains_on_pasted_text_for_a_hub_model(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2")), "res_view": "Tuned lens",
                                "res_prompt": "the cat sat on the mat", "res_answer": " cat",
                                "res_other": " dog"})
    at.radio(key="res_tuned_source").set_value("text").run()
    at.button(key="res_tuned_train").click().run()
    assert "Paste some training text first" in texts(at)
    at.text_area(key="res_tuned_text").set_value("the cat sat on the mat and the dog ran home . " * 30).run()
    at.button(key="res_tuned_train").click().run(timeout=180)
    assert not at.exception
    shown = texts(at)
    assert "Trained on your text" in shown and "On held-out text the tuned lens" in shown


@pytest.mark.parametrize("answer,message", [
    (" Mry", "this model does not know 'Mry'"),
    ("", "Type the answer token first"),
    ("Mary went", "2 tokens for this model"),
    (" John", "The answer and the other token are the same"),
])
def test_bad_answer_tokens_get_a_clear_message(answer, message):
    at = open_page(PAGE)
    at.text_input(key="res_answer").set_value(answer).run()
    assert not at.exception
    assert message in texts(at), texts(at)[-800:]
    assert at.text_input(key="res_answer").value == answer  # nothing typed is lost


def test_an_empty_prompt_is_explained():
    at = open_page(PAGE)
    at.text_area(key="res_prompt").set_value("  ").run()
    assert not at.exception and "the box is empty" in texts(at)


def test_an_active_intervention_is_shown_and_changes_the_result():
    clean = open_page(PAGE, query={"res_view": "Direct logit attribution"})
    vector = np.random.default_rng(0).normal(size=128).astype(np.float32) * 3
    steer = Steering(name="test push", model_spec="bundled", hook_name="blocks.2.hook_resid_pre",
                     vector=vector, coefficient=2.0, source="steering")
    at = open_page(PAGE, query={"res_view": "Direct logit attribution"}, state={KEY: {"test push": steer}})
    shown = texts(at)
    assert "1 intervention switched on" in shown and "test push" in shown
    assert metric(at, "logit(") != pytest.approx(metric(clean, "logit("), abs=1e-3)
    assert metric(at, "logit(") == pytest.approx(metric(at, "Sum of the parts"), abs=1e-4)
    at.button(key="res_iv_off_0").click().run()
    assert "switched on" not in texts(at)
    assert metric(at, "logit(") == pytest.approx(metric(clean, "logit("), abs=1e-6)


def test_an_intervention_for_another_model_is_not_shown():
    other = NeuronAblation(name="other model", model_spec="gpt2", layer=0, neuron=1)
    at = open_page(PAGE, state={KEY: {"other model": other}})
    assert "switched on" not in texts(at)


def test_the_prediction_is_locked_and_graded():
    at = open_page(PAGE, predict=True)
    assert "Predict first." in texts(at) and not at.tabs
    at.selectbox(key="res_predict_answer").set_value(3)
    next(b for b in at.button if b.label == "Lock my prediction").click().run()
    assert not at.exception
    shown = texts(at).replace("\\", "")
    assert "You predicted:** layer 3" in shown
    assert re.search(r"Measured:\*\* the model's answer ' Mary' first becomes readable at layer 3", shown)
    assert ":material/check: right" in shown
    assert at.tabs  # the result is shown after the prediction


def test_a_long_prompt_is_shown_a_window_at_a_time():
    long = " ".join(["kite Oslo purple cheerful Ben lake moo Tokyo duck river."] * 4)
    at = open_page(PAGE, query={"res_prompt": long, "res_answer": " lake", "res_other": " Ben"})
    slider = at.slider(key="res_window_logit")
    assert slider.value == slider.max  # the window ends at the last token
    spec = next(c.proto.spec for c in at.get("vega_lite_chart") if "Logit lens" in c.proto.spec)
    assert "0: <|endoftext|>" not in spec  # the start of the prompt is outside the window
    slider.set_value(slider.min).run()
    assert not at.exception
    spec = next(c.proto.spec for c in at.get("vega_lite_chart") if "Logit lens" in c.proto.spec)
    assert "0: <|endoftext|>" in spec
