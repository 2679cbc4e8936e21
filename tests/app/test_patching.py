"""The Activation patching page through app.py: sweeps drawn, every tab, every family, bad pairs,
the prediction step, ACDC and the hand-off to Steering."""

from __future__ import annotations

import re

import pytest

from tests.app.helpers import open_page, texts
from ui.patching.handoff import ABLATE_KEY
from ui.patching.views import TABS

PAGE = "app_pages/patching.py"


@pytest.fixture(autouse=True)
def _tiny_models_may_be_linked(tmp_path_factory, monkeypatch):
    """Links may name model folders only under the server's model roots: the tiny models live there."""
    monkeypatch.setenv("LAB_MODEL_ROOTS", str(tmp_path_factory.getbasetemp()))


def shown_text(at) -> str:
    return texts(at).replace("\\", "")  # markdown escapes (3\\.0) removed


def charts(at) -> list[str]:
    return [c.proto.spec for c in at.get("vega_lite_chart")]


def test_the_page_opens_runs_a_sweep_and_draws_the_heatmap():
    at = open_page(PAGE)
    shown = texts(at)
    assert at.selectbox(key="patch_behaviour").value == "IOI"
    assert re.search(r"\d+ patches in \d+ batched forward passes", shown)
    assert "**What to notice.** The strongest patch is" in shown and "Where the difference sits" in shown
    assert any('"share restored"' in spec for spec in charts(at))  # the heatmap's colour legend
    at.segmented_control(key="patch_sweep").set_value("Heads by position").run()
    assert not at.exception
    shown = shown_text(at)
    assert re.search(r"The strongest patch is head 3\.0 at 14 ' to' \(end\): it alone restores \d+%", shown)
    assert any('"head (layer.head)"' in spec for spec in charts(at))


def test_noising_says_what_it_destroys():
    at = open_page(PAGE, query={"patch_direction": "Noising", "patch_sweep": "Heads"})
    assert "is this activation needed?" in texts(at)
    words = r"The strongest patch is head 3\.0 \(all positions\): it alone destroys \d+%"
    assert re.search(words, shown_text(at))


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_opens_on_the_bundled_model(tab):
    at = open_page(PAGE, query={"patch_view": tab})
    expected = {"Sweeps": "The strongest patch", "Path patching": "sender -> receiver paths in",
                "Attribution vs exact": "The estimate correlates", "Circuit": "circuit of",
                "Cross-check": "Three methods"}[tab]
    assert expected in texts(at).replace("\\", "")
    assert charts(at) or tab == "Cross-check"


def test_the_induction_circuit_is_scored_against_the_report():
    at = open_page(PAGE, query={"patch_view": "Circuit", "patch_behaviour": "Induction"})
    shown = shown_text(at)
    assert "Against the ground truth." in shown
    assert re.search(r"precision 0\.\d\d, recall 1\.00\. It contains every one\.", shown), shown[-1500:]


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neo", "gpt_neox", "llama"])
def test_every_family_runs_the_sweeps_and_the_circuit(tiny_model_dir, arch):
    model = str(tiny_model_dir(arch))
    at = open_page(PAGE, query={"model": model, "patch_sweep": "Head q, k, v, pattern"})
    assert at.selectbox(key="patch_behaviour").value == "Induction"  # the default off the bundled model
    assert "patches in" in texts(at) and charts(at)
    at = open_page(PAGE, query={"model": model, "patch_view": "Circuit"})
    assert "circuit of" in texts(at)


def test_exact_acdc_runs_from_its_button_and_reports_its_circuit(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2")), "patch_view": "Circuit"})
    next(b for b in at.button if b.label == "Run exact ACDC").click().run()
    assert not at.exception
    assert re.search(r"ACDC kept \d+ of 110 edges after \d+ tests", shown_text(at))


def test_a_circuit_goes_to_steering_as_heads_to_ablate():
    at = open_page(PAGE, query={"patch_view": "Circuit"})
    next(b for b in at.button if b.label.startswith("Send to Steering")).click().run()
    assert not at.exception
    sent = list(at.session_state[ABLATE_KEY].values())
    assert len(sent) == 1 and sent[0].model_spec == "bundled" and sent[0].heads
    assert all(v.shape == (32,) for v in sent[0].mean_z.values())  # d_head of the bundled model


@pytest.mark.parametrize(("clean", "corrupt", "words"), [
    ("When Mary went to the store", "When Mary and John went to the store", "different token lengths"),
    ("", "When John went home", "The clean prompt is empty"),
])
def test_a_bad_pair_gets_a_clear_message_and_keeps_what_was_typed(clean, corrupt, words):
    at = open_page(PAGE, query={"patch_behaviour": "Your own pair"})
    assert "patches in" in texts(at)  # the default pair of your own works
    at.text_input(key="patch_clean").set_value(clean)
    at.text_input(key="patch_corrupt").set_value(corrupt).run()
    assert not at.exception
    assert words in texts(at)
    assert at.text_input(key="patch_corrupt").value == corrupt
    assert "patches in" not in texts(at)


def test_a_prediction_is_locked_then_graded_against_the_head_sweep():
    at = open_page(PAGE, predict=True)
    assert "Which head matters most for this behaviour (IOI)?" in texts(at)
    assert "patches in" not in texts(at)  # the result waits
    at.selectbox(key="patch_predict_answer").set_value((3, 0))
    at.text_input(key="patch_predict_why").input("the last layer moves the name")
    next(b for b in at.button if b.label == "Lock my prediction").click().run()
    assert not at.exception
    shown = texts(at).replace("\\", "")
    assert "**You predicted:** head 3.0 (70% sure)" in shown
    assert re.search(r"\*\*Measured:\*\* head 3\.0 matters most: patching it alone moves the behaviour "
                     r"\d+%", shown)
    assert ":material/check: right" in shown and "patches in" in shown
