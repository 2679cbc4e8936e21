"""The link note (ui.common.url_state): which values from a link were not used, decided on constructed
inputs that go each way."""

from __future__ import annotations

import pytest

from ui.common.url_state import MAX_ITEMS, LinkIssue, describe, link_issues, same_values, url_form


@pytest.mark.parametrize(("value", "value_type", "expected"), [
    (3, "int_value", ["3"]),
    (0.15, "double_value", ["0.15"]),
    (2.0, "double_value", ["2"]),  # Streamlit writes whole floats without ".0"
    (True, "bool_value", ["true"]),
    ([0.5, 1.0], "double_array_value", ["0.5", "1"]),
    (("a", "b"), "string_array_value", ["a", "b"]),
    ("Layer 2", "string_value", ["Layer 2"]),
    (None, "string_value", [""]),
])
def test_url_form_writes_values_as_streamlit_does(value, value_type, expected):
    assert url_form(value, value_type) == expected


@pytest.mark.parametrize(("raw", "held", "same"), [
    (["0.15"], ["0.15"], True),
    (["1.50"], ["1.5"], True),  # another spelling of the same number
    (["TRUE"], ["true"], True),
    (["999"], ["3"], False),
    (["1e30"], ["0.15"], False),
    (["nan"], ["nan"], True),  # a text box may hold the word "nan"
    (["nan"], ["0"], False),  # a number box never holds NaN: Streamlit used its default
    (["inf"], ["0"], False),
    (["a", "b"], ["a", "b"], True),
    (["a", "zebra"], ["a"], False),  # one option dropped from a multiselect
    (["Layer 2"], ["Layer 2"], True),
    (["layer 2"], ["Layer 2"], False),
])
def test_same_values(raw, held, same):
    assert same_values(raw, held) is same


def test_link_issues_name_replaced_and_unknown_values_only():
    raw = {"layer": ["999"], "coef": ["4"], "bogus": ["x"], "other_page": ["1"], "model": ["gpt2"]}
    held = {"layer": ["3"], "coef": ["4"]}
    issues = link_issues(raw, held, known={"layer", "coef", "other_page"}, ignore={"model"})
    assert issues == [LinkIssue("layer", ["999"], ["3"], "replaced"),
                      LinkIssue("bogus", ["x"], None, "unknown")]


def test_a_link_whose_values_all_apply_gives_no_issues():
    assert link_issues({"layer": ["2"], "coef": ["4.0"]}, {"layer": ["2"], "coef": ["4"]}, {"layer"}) == []


def test_the_note_says_what_was_used_and_escapes_the_link():
    words = describe([LinkIssue("layer", ["999"], ["3"], "replaced"),
                      LinkIssue("x*y", ["[click](http://evil)"], None, "unknown")])
    assert "**layer** = 999 is not valid here; used 3" in words
    assert "**x\\*y**" in words and "\\[click\\]\\(http" in words  # shown as text, never as a link
    assert "not a setting of this page" in words


def test_the_note_cuts_long_values_and_counts_what_it_does_not_list():
    issues = [LinkIssue(f"k{i}", ["v" * 500], ["1"], "replaced") for i in range(MAX_ITEMS + 3)]
    words = describe(issues)
    assert "v" * 41 not in words and "…" in words
    assert words.count("is not valid here") == MAX_ITEMS and "and 3 more" in words


def _page():
    import streamlit as st

    from ui.common.url_state import begin, reads_param

    check = begin("demo")
    st.slider("Layer", 0, 3, 1, key="layer", bind="query-params")
    if st.query_params.get("old_layer"):
        reads_param("old_layer")  # the page translates this old parameter itself
    check.finish()


def _note(query: dict) -> list[str]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page)
    at.query_params.update(query)
    at.run()
    assert not at.exception
    return [c.value for c in at.caption]


def test_a_script_run_notes_bad_values_and_not_parameters_the_page_reads_itself():
    assert _note({"layer": "2"}) == []
    [note] = _note({"layer": "9", "old_layer": "2", "junk": "x"})
    assert "**layer** = 9 is not valid here; used 1" in note and "**junk**" in note
    assert "old\\_layer" not in note
