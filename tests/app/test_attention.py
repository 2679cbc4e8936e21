"""The Attention page through app.py: every view on every model family, one control moved at a time."""

from __future__ import annotations

import random
import re

import pytest

from tests.app.helpers import open_page, texts
from ui.attention.views import VIEWS

PAGE = "app_pages/attention.py"



def head_line(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("Head **"))


def test_choosing_another_head_changes_the_measured_entropy(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2"))})
    before = head_line(at)
    assert before.startswith("Head **0.0**: entropy **")
    at.selectbox(key="attn_head").set_value(2).run()
    assert not at.exception
    after = head_line(at)
    assert after.startswith("Head **0.2**: entropy **")
    entropy = [float(re.search(r"entropy \*\*([\d.]+) bits", s).group(1)) for s in (before, after)]
    assert entropy[0] != entropy[1]


def test_value_weighting_changes_the_first_token_share_and_explains_itself(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2"))})
    assert "Raw attention can mislead" not in texts(at)
    share = next(m.value for m in at.markdown if m.value.startswith("On the first token"))
    raw, weighted = (int(x) for x in re.findall(r"\*\*(\d+)%\*\*", share))
    assert 0 <= weighted <= 100 and 0 <= raw <= 100
    before = head_line(at)
    at.toggle(key="attn_value_weighted").set_value(True).run()
    assert "Raw attention can mislead" in texts(at)
    assert any("Head 0.0 (value-weighted)" in c.proto.spec for c in at.get("vega_lite_chart"))
    assert head_line(at) != before  # the entropy of the value-weighted pattern is another number


@pytest.mark.parametrize("arch", ["gpt2", "gpt_neo", "gpt_neox", "llama"])
@pytest.mark.parametrize("view", VIEWS)
def test_every_view_opens_on_every_family(tiny_model_dir, arch, view):
    at = open_page(PAGE, query={"model": str(tiny_model_dir(arch)), "attn_view": view})
    shown = texts(at)
    expected = {"One head": "entropy", "All heads": "Entropy per head",
                "From one token": "the strongest look",
                "Head types": "This model has no ground truth", "Circuits": "QK circuit"}[view]
    assert expected in shown, shown[-800:]
    if arch == "llama" and view == "One head":
        assert "grouped-query attention" in shown


def test_from_one_token_follows_the_chosen_query(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2")), "attn_view": "From one token"})
    first = next(m.value for m in at.markdown if m.value.startswith("From **"))
    at.selectbox(key="attn_query").set_value(5).run()
    second = next(m.value for m in at.markdown if m.value.startswith("From **"))
    assert second.startswith("From **5:") and first != second


def test_an_empty_prompt_is_explained_and_the_page_keeps_running(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2"))})
    at.text_area(key="attn_prompt").set_value("   ").run()
    assert not at.exception
    assert "the box is empty" in texts(at)


def test_bundled_model_shows_the_ground_truth_and_the_copying_verdict():
    at = open_page(PAGE, query={"attn_view": "Head types"})
    shown = texts(at)
    assert "the report lists" in shown and "What to notice on the bundled model" in shown
    assert re.search(r"induction heads copy|Not every induction head copies", shown)
    at = open_page(PAGE, query={"attn_view": "Circuits", "attn_layer": "2", "attn_head": "1"})
    shown = texts(at)
    assert "copying score" in shown and "QK circuit: which distances does layer 2 prefer" in shown
    verdict = next(m.value for m in at.markdown if "The heads that the evaluation report lists" in m.value)
    at.segmented_control(key="attn_ov_mode").set_value("direct").run()
    assert "raw embedding row" in texts(at)
    raw = next(m.value for m in at.markdown if "The heads that the evaluation report lists" in m.value)
    assert raw != verdict  # the copying scores depend on what E is


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_a_prediction_is_locked_then_graded_against_the_head_scores():
    at = open_page(PAGE, predict=True)
    assert "Which head is the strongest previous-token head" in texts(at)
    assert not any(m.value.startswith("Head **") for m in at.markdown)  # the result waits
    at.selectbox(key="attn_predict_answer").set_value((2, 0))
    at.text_input(key="attn_predict_why").input("it looks one back")
    _button(at, "Lock my prediction").click().run()
    assert not at.exception
    shown = texts(at).replace("\\", "")
    assert "**You predicted:** head 2.0 (70% sure)" in shown and "it looks one back" in shown
    assert re.search(r"\*\*Measured:\*\* head 2\.0 is the strongest previous-token head \(0\.\d\d\)", shown)
    assert ":material/check: right" in shown
    assert any(m.value.startswith("Head **") for m in at.markdown)  # now the result is shown


@pytest.mark.parametrize(("layer", "head"), [(0, 0), (2, 0), (0, 3), (3, 2)])
def test_a_link_restores_layer_and_head_including_zeros(layer, head):
    at = open_page(PAGE, query={"attn_layer": str(layer), "attn_head": str(head),
                                "attn_value_weighted": "true", "attn_view": "One head"})
    assert (at.selectbox(key="attn_layer").value, at.selectbox(key="attn_head").value) == (layer, head)
    assert at.toggle(key="attn_value_weighted").value is True
    assert head_line(at).startswith(f"Head **{layer}.{head}**")


def test_the_declared_default_head_stays_the_same_on_every_run():
    """Streamlit leaves a bound value out of the URL when it equals the widget's default. The default
    must not change after the first run (it used to fall to 0.0, so head 0 and layer 0 never reached
    the URL, and a link to 2.0 opened 2.2)."""
    at = open_page(PAGE)
    def defaults():
        return at.selectbox(key="attn_layer").proto.default, at.selectbox(key="attn_head").proto.default

    assert defaults() == (3, 2)  # the report's strongest induction head, the first-visit view
    at.selectbox(key="attn_layer").set_value(0).run()
    at.selectbox(key="attn_head").set_value(0).run()
    assert defaults() == (3, 2)
    assert head_line(at).startswith("Head **0.0**")


def test_random_url_values_never_raise():
    rng = random.Random(19)
    junk = ["", "-1", "999", "nan", "1e309", "0x10", "2.0", "🦄", "\x00", "a" * 300, "One head", "true"]
    for _ in range(4):
        query = {k: rng.choice(junk) for k in ("attn_layer", "attn_head", "attn_value_weighted", "attn_view",
                                                "attn_query", "attn_ov_mode")}
        at = open_page(PAGE, query=query)
        assert not at.exception, query
        assert at.selectbox(key="attn_layer").value in range(4)
