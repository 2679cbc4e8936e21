"""The Attention page through app.py: every view on every model family, one control moved at a time."""

from __future__ import annotations

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
