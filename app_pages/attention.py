"""Attention: who attends to whom, what kind of head does it, and what each head copies."""

import streamlit as st

from core.interp.attention import head_scores, verdicts
from core.interp.attention import patterns as attention_lesson
from core.interp.attention import weight_circuits as circuits
from core.notebook.questions.attention import PREVIOUS_TOKEN_HEAD
from ui.attention import compute
from ui.attention import heads as attention_heads
from ui.attention import views as attention_views
from ui.common.interventions import show_active, signature
from ui.common.models import current_model, prompt_box
from ui.common.page import end_page, how_it_is_computed, page_header
from ui.common.predict import predict_first
from ui.common.remote import ask

# Unrelated words, then the same words again: only copying can predict the second half (induction).
BUNDLED_PROMPT = ("kite Oslo purple cheerful Ben lake moo Tokyo duck river. "
                  "kite Oslo purple cheerful Ben lake moo Tokyo duck river.")
OTHER_PROMPT = ("The cat sat on the mat and looked at the dog. "
                "The cat sat on the mat and looked at the dog.")

page_header(
    "Attention",
    "Each attention head decides, at every position, how much to read from every earlier token. "
    "Here you see those decisions for your prompt, head by head and all at once; sort every head into "
    "a type (previous-token, induction, resting on the first token, ...) by measuring it on generated "
    "data; and read from the weights alone what a head copies and which distances it prefers. On the "
    "bundled model, the heads its evaluation report lists are the answer key.",
    "Which heads look where, and can you tell from the weights what a head does with what it reads?",
)

lm = current_model()
show_active(lm, key="attn_iv")
sig = signature(lm)
prompt = prompt_box(lm, key="attn_prompt", default=BUNDLED_PROMPT if lm.is_bundled else OTHER_PROMPT,
                    height=90, max_tokens=compute.max_tokens(lm))
if compute.max_tokens(lm) < compute.MAX_TOKENS:
    st.caption(f":material/cloud: This page reads at most {compute.max_tokens(lm)} tokens from this model: "
               "every head's pattern grows with the square of the prompt's length, and one request to a "
               f"model elsewhere brings back at most {compute.MAX_READ_BYTES / 1e6:,.0f} MB.")
listed = compute.listed_heads(lm)
induction = max(listed.get("induction", []), key=lambda t: t[2], default=(0, 0, 0.0))
layer, head, weighted = attention_views.controls(lm, default=induction[:2])

step = predict_first(PREVIOUS_TOKEN_HEAD, key="attn_predict", context=f"{lm.spec}|{sig}", page="attention",
                     model=lm.spec, cfg=lm.cfg)
if prompt is not None and step.ready:
    scores = ask(lm, "Scoring every head on repeated random tokens", lambda: compute.score_tables(lm, sig),
                 key="attn_scores")
    if scores is None:  # a remote request failed: the message is on the page
        end_page()
    step.reveal(scores)
    tokens = tuple(int(t) for t in prompt.tokens[0])
    run = ask(lm, "Reading every head's pattern", lambda: compute.attention_run(lm, tokens, sig),
              key="attn_run")
    if run is None:
        end_page()
    kinds = attention_lesson.head_types(scores)
    st.caption(f"{run.n_pos} tokens (the first is the beginning-of-text token the model always gets); "
               f"{lm.cfg.n_layers} layers x {lm.cfg.n_heads} heads"
               + (f"; this model shares each key/value head between {lm.cfg.n_heads // lm.cfg.n_kv_heads} "
                  "query heads (grouped-query attention), so some heads share their values."
                  if lm.cfg.n_kv_heads < lm.cfg.n_heads else "."))

    tabs = st.tabs(attention_views.VIEWS, key=attention_views.VIEW, on_change="rerun",
                   bind="query-params")
    one, grid, token, types, circuit = tabs
    if one.open:
        with one:
            attention_views.one_head(run, layer, head, weighted, kinds)
    if grid.open:
        with grid:
            attention_views.all_heads(run, weighted, kinds)
    if token.open:
        with token:
            attention_views.from_one_token(run, weighted)
    if types.open:
        with types:
            attention_heads.head_types(lm, scores, listed)
    if circuit.open:
        with circuit:
            attention_heads.circuits(lm, run, layer, head, scores, listed)
    attention_heads.what_to_notice(lm, run, scores, listed, verdict=not circuit.open)

how_it_is_computed(
    attention_lesson, head_scores, circuits, verdicts,
    papers=(
        "Vaswani et al. (2017), [*Attention is all you need*](https://arxiv.org/abs/1706.03762): scaled "
        "dot-product attention.",
        "Kobayashi, Kuribayashi, Yokoi and Inui (2020), [*Attention is not only a weight: analyzing "
        "transformers with vector norms*](https://arxiv.org/abs/2004.10102), EMNLP: value-weighted "
        "attention.",
        "Elhage et al. (2021), [*A mathematical framework for transformer circuits*]"
        "(https://transformer-circuits.pub/2021/framework/index.html): QK and OV circuits, the "
        "eigenvalue copying score.",
        "Olsson et al. (2022), [*In-context learning and induction heads*]"
        "(https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html).",
        "Vig (2019), [*A multiscale visualization of attention in the Transformer model*]"
        "(https://arxiv.org/abs/1906.05714), the paper behind bertviz: attention at the head, model and "
        "neuron level, side by side.",
        "Cooney and Nanda, [CircuitsVis](https://github.com/TransformerLensOrg/CircuitsVis): interactive "
        "attention-pattern views (every head of a layer over the tokens) that work with TransformerLens.",
        "ARENA, [*Transformer interpretability* chapter]"
        "(https://arena-chapter1-transformer-interp.streamlit.app/): exercises that build induction heads, "
        "head detectors and the diagonal measure by hand.",
        "TransformerLens's head detector: previous-token, duplicate-token and induction head scores.",
    ),
)
