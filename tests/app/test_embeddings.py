"""The Embeddings & positions page through app.py: typed groups, neighbours, positions, bad input."""

from __future__ import annotations

import pytest

from tests.app.helpers import open_page, texts

PAGE = "app_pages/embeddings.py"
GROUPS = "colours: red, blue, happy\nanimals: cat, dog, mat\nnames: Mary, John, park"


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_changing_the_groups_changes_the_measured_separation(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2")), "emb_groups": GROUPS})
    before = metric(at, "Silhouette (cosine)")
    assert "9 tokens in 3 categories" in texts(at)
    at.text_area(key="emb_groups").set_value(GROUPS + "\nmore: sat, ran, home").run()
    assert not at.exception
    assert "12 tokens in 4 categories" in texts(at)
    assert metric(at, "Silhouette (cosine)") != before


def test_unknown_words_are_listed_and_a_bad_line_is_explained(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2")), "emb_groups": GROUPS + ", zebra"})
    assert "Left out (not one known token of this model, or repeated): zebra" in texts(at)
    at.text_area(key="emb_groups").set_value("colours red blue").run()
    assert not at.exception
    assert "Line 1 has no colon" in texts(at)


def test_tsne_replaces_the_pca_axes(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2")), "emb_groups": GROUPS})
    assert "of the variance" in at.get("vega_lite_chart")[0].proto.spec
    at.segmented_control(key="emb_method").set_value("tsne").run()
    spec = at.get("vega_lite_chart")[0].proto.spec
    assert "t-SNE 1" in spec and "of the variance" not in spec


def test_neighbours_follow_the_chosen_token(tiny_model_dir):
    at = open_page(PAGE, query={"model": str(tiny_model_dir("gpt2")), "emb_view": "Neighbours & analogies"})
    first = at.dataframe[0].value["token"].tolist()
    assert "cat" not in [t.strip() for t in first] and len(first) == 10
    at.text_input(key="emb_word").set_value("Mary").run()
    second = at.dataframe[0].value["token"].tolist()
    assert "Nearest to 'Mary'" in texts(at) and second != first
    assert "ties its embedding and unembedding" in texts(at)  # tiny GPT-2 ties W_U = W_E^T
    at.text_input(key="emb_word").set_value("zebra").run()
    assert "'zebra' is not one known token" in texts(at)


@pytest.mark.parametrize(("arch", "expected"), [("gpt2", "neighbouring positions of W_pos have cosine"),
                                                 ("gpt_neo", "neighbouring positions of W_pos have cosine"),
                                                 ("llama", "no position table"),
                                                 ("gpt_neox", "2 rotating pairs in a head of 8 dimensions")])
def test_positions_on_learned_and_rotary_models(tiny_model_dir, arch, expected):
    at = open_page(PAGE, query={"model": str(tiny_model_dir(arch)), "emb_view": "Positions"})
    assert expected in texts(at)


def test_bundled_model_uses_the_grammar_groups_and_checks_an_analogy():
    from core.world.datasets import token_groups

    groups = token_groups()
    at = open_page(PAGE)
    shown = texts(at)
    assert f"{sum(map(len, groups.values()))} tokens in {len(groups)} categories" in shown
    assert "Female vs male names only" in shown
    at.multiselect(key="emb_categories").set_value(["colours", "digits"]).run()
    assert f"{len(groups['colours']) + len(groups['digits'])} tokens in 2 categories" in texts(at)
    at = open_page(PAGE, query={"emb_view": "Neighbours & analogies"})
    assert "Ground truth: the pronoun for John is he: answer number" in texts(at)
    at.text_input(key="emb_a").set_value("Paris").run()
    at.text_input(key="emb_b").set_value("France").run()
    at.text_input(key="emb_c").set_value("Italy").run()
    assert "Ground truth: the capital of Italy is Rome: answer number" in texts(at)
