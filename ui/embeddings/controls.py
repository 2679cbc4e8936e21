"""The Embeddings page's controls: widgets -> frozen settings objects, every value bound to the URL.

Each tab's controls are drawn on every run, also while another tab is open (hidden there), so a link
keeps all of them: switching to Positions and back does not lose the t-SNE choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from core.interp.embeddings import geometry as E
from core.world.datasets import token_groups
from ui.common.page import show_problem
from ui.embeddings.compute import SPACES

TYPED_GROUPS = (
    "colours: red, blue, green, yellow, black, white, purple, orange\n"
    "animals: dog, cat, horse, cow, sheep, lion, mouse, bird\n"
    "numbers: one, two, three, four, five, six, seven, eight\n"
    "countries: France, Germany, Italy, Spain, Japan, China, Canada, Egypt\n"
    "verbs: ran, walked, ate, saw, took, gave, made, said"
)
MAX_GROUPS_CHARS = 1500  # typed categories: about 200 words (and the link stays under 2,000 characters)
METHODS = {"pca": "PCA", "tsne": "t-SNE"}


@dataclass(frozen=True)
class GeometryControls:
    groups: tuple[tuple[str, tuple[str, ...]], ...] | None  # None: the typed groups do not parse
    method: str  # "pca" or "tsne"
    space: str  # a key of SPACES
    labels: bool  # write (some of) the tokens beside their points


@dataclass(frozen=True)
class NeighbourControls:
    word: str
    token: int | None  # None: not one known token
    k: int


@dataclass(frozen=True)
class AnalogyControls:
    words: tuple[str, str, str]  # a, b, c as typed
    ids: tuple[int | None, int | None, int | None]  # None: not one known token
    answers: int
    space: str  # the matrix the analogy is computed in

    @property
    def ready(self) -> bool:
        return None not in self.ids


def _space(lm, key: str, label: str) -> str:
    if lm.tied_embeddings:
        return "embedding"
    return st.radio(label, list(SPACES), format_func=SPACES.get, horizontal=True, key=key,
                    bind="query-params", help="Untied models have two token tables: W_E reads tokens "
                                              "in, W_U writes predictions out.")


def _groups(lm) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
    if lm.is_bundled:
        groups = token_groups()
        chosen = st.multiselect("Categories (from the world's grammar)", list(groups), default=list(groups),
                                key="emb_categories", bind="query-params")
        return tuple((name, groups[name]) for name in chosen)
    text = st.text_area("Categories, one per line as `category: word, word, ...`", value=TYPED_GROUPS,
                        key="emb_groups", bind="query-params", height=140, max_chars=MAX_GROUPS_CHARS)
    try:
        return tuple((k, tuple(v)) for k, v in E.parse_groups(text or "").items())
    except ValueError as err:
        show_problem(str(err))
        return None


def geometry(lm) -> GeometryControls:
    groups = _groups(lm)
    left, middle, right = st.columns(3, vertical_alignment="bottom")
    with left:
        method = st.segmented_control("Projection", list(METHODS), format_func=METHODS.get, default="pca",
                                      required=True, key="emb_method", bind="query-params")
    with middle:
        space = _space(lm, "emb_space", "Which matrix")
    with right:
        labels = st.toggle("Write the tokens", key="emb_labels", bind="query-params",
                           help="Writes as many tokens as fit without overlapping; hover over any "
                                "point for its token.")
    return GeometryControls(groups, method or "pca", space, labels)


def word(lm, label: str, default: str, key: str, column) -> tuple[str, int | None]:
    text = column.text_input(label, value=default, key=key, bind="query-params", max_chars=100)
    token = E.word_token_id(lm.tokenizer, text or "")
    if token is None:
        column.warning(f"{text!r} is not one known token of this model.", icon=":material/warning:")
    return text or "", token


def neighbours(lm) -> NeighbourControls:
    left, right = st.columns([2, 1])
    text, token = word(lm, "Token", "Mary" if lm.is_bundled else "cat", "emb_word", left)
    k = right.slider("Neighbours", 5, 30, 10, key="emb_k", bind="query-params")
    return NeighbourControls(text, token, k)


def analogy(lm) -> AnalogyControls:
    a_col, b_col, c_col, k_col = st.columns(4)
    defaults = ("she", "Mary", "John") if lm.is_bundled else ("king", "man", "woman")
    a = word(lm, "a", defaults[0], "emb_a", a_col)
    b = word(lm, "minus b", defaults[1], "emb_b", b_col)
    c = word(lm, "plus c", defaults[2], "emb_c", c_col)
    answers = k_col.slider("Answers", 1, 10, 5, key="emb_analogy_k", bind="query-params")
    space = _space(lm, "emb_analogy_space", "Analogy in")
    return AnalogyControls((a[0], b[0], c[0]), (a[1], b[1], c[1]), answers, space)
