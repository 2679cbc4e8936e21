"""Embeddings & positions: where tokens and positions live, and which words are neighbours."""

import streamlit as st

from core.interp.embeddings import geometry as embeddings_lesson
from core.interp.embeddings import positions as positions_lesson
from core.interp.embeddings import verdicts as embeddings_verdicts
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
# Every tab draws its controls on every run (so the link keeps them); only the open one computes.
with geometry:
    views.geometry(lm, geometry.open)
with neighbours:
    views.neighbours(lm, neighbours.open)
if positions.open:
    with positions:
        views.positions(lm)

how_it_is_computed(
    embeddings_lesson, embeddings_verdicts, positions_lesson,
    papers=(
        "Mikolov, Yih and Zweig (2013), [*Linguistic regularities in continuous space word "
        "representations*](https://aclanthology.org/N13-1090/): analogies as vector arithmetic.",
        "van der Maaten and Hinton (2008), [*Visualizing data using t-SNE*]"
        "(https://jmlr.org/papers/v9/vandermaaten08a.html), JMLR; Wattenberg, Viégas and Johnson (2016), "
        "[*How to use t-SNE effectively*](https://distill.pub/2016/misread-tsne/).",
        "Rousseeuw (1987), [*Silhouettes*](https://doi.org/10.1016/0377-0427%2887%2990125-7), "
        "J. Comput. Appl. Math.",
        "Hewitt and Liang (2019), [*Designing and interpreting probes with control tasks*]"
        "(https://arxiv.org/abs/1909.03368), EMNLP.",
        "Vaswani et al. (2017), [*Attention is all you need*](https://arxiv.org/abs/1706.03762): "
        "sinusoidal position encodings.",
        "Su et al. (2021), [*RoFormer: enhanced transformer with rotary position embedding*]"
        "(https://arxiv.org/abs/2104.09864).",
        "Press and Wolf (2017), [*Using the output embedding to improve language models*]"
        "(https://arxiv.org/abs/1608.05859): tied embeddings.",
    ),
)
