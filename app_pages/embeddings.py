"""Embeddings & positions: where tokens and positions live, and which words are neighbours."""

import streamlit as st

from core.interp.embeddings import geometry as embeddings_lesson
from core.interp.embeddings import positions as positions_lesson
from ui.common.models import current_model
from ui.common.page import how_it_is_computed, page_header
from ui.embeddings import views

page_header(
    "Embeddings & positions",
    "Before any attention or MLP, each token becomes a row of the embedding matrix and each position "
    "a row of the position table (or a rotation). Here you see where those rows sit: whether words of "
    "a kind cluster together, measured and not just drawn; which tokens are neighbours; whether "
    "analogies work as arithmetic; and how models tell first from fifth.",
    "What does a model know about a word before it has read any context, and how does it know where "
    "the word is?",
)

lm = current_model()
geometry, neighbours, positions = st.tabs(views.VIEWS, key="emb_view", on_change="rerun", bind="query-params")
if geometry.open:
    with geometry:
        if lm.is_bundled:
            st.markdown("The categories come from the grammar that wrote the bundled model's training text, "
                        "so the colours are the truth; the question is whether the geometry found it.")
        views.geometry(lm)
if neighbours.open:
    with neighbours:
        views.neighbours(lm)
if positions.open:
    with positions:
        views.positions(lm)

how_it_is_computed(
    embeddings_lesson, positions_lesson,
    papers=(
        "Mikolov, Yih and Zweig (2013), *Linguistic regularities in continuous space word representations*: "
        "analogies as vector arithmetic.",
        "van der Maaten and Hinton (2008), *Visualizing data using t-SNE*, JMLR; Rousseeuw (1987), "
        "*Silhouettes*, J. Comput. Appl. Math.",
        "Hewitt and Liang (2019), *Designing and interpreting probes with control tasks*, EMNLP.",
        "Vaswani et al. (2017), *Attention is all you need*: sinusoidal position encodings.",
        "Su et al. (2021), *RoFormer: enhanced transformer with rotary position embedding*.",
        "Press and Wolf (2017), *Using the output embedding to improve language models*: tied embeddings.",
    ),
)
