"""MLP neurons & weights: what a neuron fires on and writes, and what the weights hold before any input."""

import streamlit as st

from core.interp.neurons import ablation as ablation_lesson
from core.interp.neurons import activations as activations_lesson
from core.interp.neurons import gated as gated_lesson
from core.interp.neurons import rules as rules_lesson
from core.interp.neurons import scoring as scoring_lesson
from core.interp.neurons import weights as weights_lesson
from core.interp.weights import composition as composition_lesson
from core.interp.weights import direct_path as direct_lesson
from core.interp.weights import svd as svd_lesson
from core.notebook.questions.neurons import BEST_RULE
from ui.common.models import current_model
from ui.common.page import end_page, how_it_is_computed, page_header, show_problem
from ui.common.predict import predict_first
from ui.neurons import compute, controls, views
from ui.neurons import weights as weight_views

page_header(
    "MLP neurons & weights",
    "Each MLP neuron reads one direction of the residual stream and, when it fires, writes another. "
    "Find where a neuron fires hardest over a whole corpus, read what it writes from its weights, "
    "explain it with a one-line rule that is scored against the bundled world's ground truth, and "
    "knock it out to see what the model loses. Then look at the attention weights themselves: what "
    "each head reads and writes, and which heads feed which.",
    "What does this neuron respond to, can one line explain it, and what do the weights say before "
    "any input?",
)

lm = current_model()
choice = controls.choose(lm)
if choice is None:
    end_page()
try:
    rec = compute.records(lm, choice.layer, choice.source, choice.key, choice.text)
except ValueError as err:  # too little text, or over the session's memory budget
    show_problem(str(err))
    end_page()
st.caption(f"Layer {choice.layer}'s MLP, {lm.cfg.d_mlp:,} neurons, read on "
           f"{compute.source_words(lm, choice.source, rec.n_tokens)}.")

options = compute.candidates(lm, choice.layer, choice.neuron)
step = predict_first(BEST_RULE, key="nrn_predict", context=f"{lm.spec}|{choice.layer}|{choice.neuron}",
                     page="neurons", model=lm.spec, fields={"neuron": f"L{choice.layer} N{choice.neuron}"},
                     options=options)
if step.ready:
    step.reveal(compute.candidate_scores(lm, choice.layer, choice.neuron, options))
    tabs = st.tabs(views.VIEWS, key=views.VIEW, on_change="rerun", bind="query-params")
    neuron_tab, explain_tab, knock_tab, svd_tab, comp_tab, direct_tab = tabs
    if neuron_tab.open:
        with neuron_tab:
            views.neuron_view(lm, choice, rec)
            views.layer_table_view(lm, choice, rec)
    if explain_tab.open:
        with explain_tab:
            views.explain_view(lm, choice)
    if knock_tab.open:
        with knock_tab:
            views.knockout_view(lm, choice, rec)
    if svd_tab.open:
        with svd_tab:
            weight_views.svd_view(lm)
    if comp_tab.open:
        with comp_tab:
            weight_views.composition_view(lm)
    if direct_tab.open:
        with direct_tab:
            weight_views.direct_view(lm)

how_it_is_computed(
    activations_lesson, weights_lesson, gated_lesson, rules_lesson, scoring_lesson, ablation_lesson,
    svd_lesson, composition_lesson, direct_lesson,
    papers=(
        "Geva et al. (2021), [*Transformer feed-forward layers are key-value memories*]"
        "(https://arxiv.org/abs/2012.14913): neurons read a pattern and write a distribution over tokens.",
        "Bills et al. (2023), [*Language models can explain neurons in language models*]"
        "(https://openaipublic.blob.core.windows.net/neuron-explainer/paper/index.html): explain, "
        "simulate, score.",
        "Elhage et al. (2021), [*A mathematical framework for transformer circuits*]"
        "(https://transformer-circuits.pub/2021/framework/index.html): OV and QK circuits, Q-/K-/V-"
        "composition, the direct path.",
        "Millidge and Black (2022), [*The singular value decompositions of transformer weight matrices "
        "are highly interpretable*](https://www.lesswrong.com/posts/mkbGjzxD8d8XqKHzA/the-singular-value-"
        "decompositions-of-transformer-weight): singular vectors projected to tokens.",
        "Shazeer (2020), [*GLU variants improve transformer*](https://arxiv.org/abs/2002.05202): gated MLPs.",
    ),
)
