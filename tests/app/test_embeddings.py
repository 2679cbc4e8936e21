"""The Embeddings & positions page through app.py: typed groups, neighbours, positions, bad input."""

from __future__ import annotations

import ast
import re

import pytest

from core.models.loading import ROOTS_ENV
from tests.app.helpers import open_page, texts

PAGE = "app_pages/embeddings.py"


@pytest.fixture(autouse=True)
def model_roots(monkeypatch, tiny_model_dir):
    """Links may name the tiny models' folders (they are under this server's model roots)."""
    monkeypatch.setenv(ROOTS_ENV, str(tiny_model_dir("gpt2").parent))
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
    first = [ast.literal_eval(t) for t in at.dataframe[0].value["token"]]  # shown quoted
    assert " cat" not in first and len(first) == 10
    at.text_input(key="emb_word").set_value("Mary").run()
    second = [ast.literal_eval(t) for t in at.dataframe[0].value["token"]]
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


def test_the_projection_survives_switching_tabs_and_labels_do_not_overlap():
    """The audit's "t-SNE lost after switching tab": every tab's controls stay on the page."""
    at = open_page(PAGE, query={"emb_method": "t-SNE", "emb_labels": "true"})
    captions = "\n".join(str(c.value) for c in at.caption)
    written = re.search(r"(\d+) of (\d+) tokens written \(the others would overlap a label or a point\)",
                        captions)
    assert written and 11 <= int(written.group(1)) < int(written.group(2))
    assert "t-SNE keeps near neighbours near" in captions
    at.session_state["emb_view"] = "Positions"
    at.run()
    assert "neighbouring positions of W_pos have cosine" in texts(at)
    assert at.segmented_control(key="emb_method").value == "tsne"  # kept while its tab is closed
    at.session_state["emb_view"] = "Token geometry"
    at.run()
    assert "t-SNE 1" in at.get("vega_lite_chart")[0].proto.spec


def test_a_link_brings_every_control_back(tiny_model_dir):
    query = {"model": str(tiny_model_dir("gpt2")), "emb_view": "Neighbours & analogies",
             "emb_groups": GROUPS, "emb_method": "t-SNE", "emb_labels": "true", "emb_word": "dog",
             "emb_k": "5", "emb_a": "cat", "emb_b": "dog", "emb_c": "red", "emb_analogy_k": "1"}
    at = open_page(PAGE, query=query)
    assert at.text_area(key="emb_groups").value == GROUPS
    assert at.segmented_control(key="emb_method").value == "tsne"
    assert at.toggle(key="emb_labels").value is True
    assert at.text_input(key="emb_word").value == "dog" and at.slider(key="emb_k").value == 5
    assert [at.text_input(key=k).value for k in ("emb_a", "emb_b", "emb_c")] == ["cat", "dog", "red"]
    assert at.slider(key="emb_analogy_k").value == 1
    assert len(at.dataframe[0].value) == 5 and len(at.dataframe[-1].value) == 1


def test_the_categories_get_distinct_hues():
    from ui.embeddings.charts import PALETTE

    at = open_page(PAGE)
    spec = at.get("vega_lite_chart")[0].proto.spec
    assert all(colour in spec for colour in PALETTE[:11]) and "tableau20" not in spec


def test_the_separation_prediction_is_graded():
    at = open_page(PAGE, predict=True)
    assert "Can a linear probe tell these 11 categories apart" in texts(at)
    assert not at.metric  # the result waits for the prediction
    at.radio(key="emb_predict_sep_answer").set_value("90% or more")
    next(b for b in at.button if b.label == "Lock my prediction").click().run()
    assert not at.exception, [e.value for e in at.exception]
    page = texts(at).replace("\\", "")
    accuracy = metric(at, "Probe on new tokens")
    assert "**You predicted:** 90% or more (70% sure)" in page
    assert f"the probe scores {accuracy} on held-out tokens" in page
    assert ("check: right" in page) == (int(accuracy.rstrip("%")) >= 90)


def test_the_analogy_prediction_is_graded_and_the_space_less_twin_is_named():
    at = open_page(PAGE, query={"emb_view": "Neighbours & analogies"}, predict=True)
    page = texts(at)
    assert "'Mary' is the same word as ' Mary' without the leading space" in page
    assert "where will the true answer, **he**, rank among all the tokens?" in page
    at.radio(key="emb_predict_analogy_answer").set_value("further down")
    next(b for b in at.button if b.label == "Lock my prediction").click().run()
    assert not at.exception, [e.value for e in at.exception]
    page = texts(at).replace("\\", "")
    rank = int(re.search(r"the pronoun for John is he: answer number (\d+) of", page).group(1))
    assert f"he ranks {'first' if rank == 1 else '2nd to 10th' if rank <= 10 else 'further down'}" in page
    assert ("not this time" in page) == (rank <= 10)


def test_fuzz_random_url_values_for_every_control(tiny_model_dir):
    import random

    rng = random.Random(5)
    junk = ["", "-1", "999", "1e308", "nan", "t-SNE", "PCA", "x" * 1200, "%00", "\u202e", "0", "true",
            "a: b\nc", ":::", "Positions", "Neighbours & analogies", "unembedding W_U", "colours"]
    keys = ["emb_view", "emb_groups", "emb_categories", "emb_method", "emb_space", "emb_labels", "emb_word",
            "emb_k", "emb_a", "emb_b", "emb_c", "emb_analogy_k", "emb_analogy_space"]
    for i in range(4):
        query = {k: rng.choice(junk) for k in keys}
        if i % 2:
            query["model"] = str(tiny_model_dir("gpt_neox"))  # untied: both matrices on offer
        at = open_page(PAGE, query=query)  # open_page asserts no exception element
        assert "Embeddings & positions" in texts(at)
