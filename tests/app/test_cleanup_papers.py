"""The Attention and Patching pages list their sources as links, in "How it is computed"."""

from __future__ import annotations

import re

import pytest

from tests.app.helpers import open_page

LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


@pytest.fixture(autouse=True)
def _tiny_models_may_be_linked(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LAB_MODEL_ROOTS", str(tmp_path_factory.getbasetemp()))


def _sources(at) -> dict[str, str]:
    """Each "Papers and sources" line, keyed by the links in it: url -> the whole line."""
    md = [str(m.value) for m in at.markdown]
    block = md[md.index("**Papers and sources**") + 1]
    lines = block.split("\n- ")
    return {url: line for line in lines for _, url in LINK.findall(line)}


def test_attention_links_bertviz_circuitsvis_and_arena_with_what_they_offer(tiny_model_dir):
    at = open_page("app_pages/attention.py", query={"model": str(tiny_model_dir("gpt2"))})
    sources = _sources(at)
    assert "bertviz" in sources["https://arxiv.org/abs/1906.05714"] and "Vig" in sources[
        "https://arxiv.org/abs/1906.05714"]
    assert "attention-pattern views" in sources["https://github.com/TransformerLensOrg/CircuitsVis"]
    assert "induction heads" in sources["https://arena-chapter1-transformer-interp.streamlit.app/"]
    assert "https://arxiv.org/abs/1706.03762" in sources  # the existing entries are kept


def test_patching_links_the_transformerlens_demo_and_heimersheim_and_nanda():
    at = open_page("app_pages/patching.py")
    sources = _sources(at)
    demo = ("https://transformerlensorg.github.io/TransformerLens/generated/demos/"
            "Activation_Patching_in_TL_Demo.html")
    assert "TransformerLens" in sources[demo]
    assert "Heimersheim and Nanda (2024)" in sources["https://arxiv.org/abs/2404.15255"]
    assert "https://arxiv.org/abs/2202.05262" in sources  # the existing entries are kept
