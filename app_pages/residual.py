"""Residual stream & logit lens: read every layer's stream, and split the answer into its writers."""

import streamlit as st

from core.interp.residual import anatomy as anatomy_lesson
from core.interp.residual import dla as dla_lesson
from core.interp.residual import logit_lens as lens_lesson
from core.interp.residual import readout as readout_lesson
from core.interp.residual import tuned_lens as tuned_lesson
from core.interp.residual.logit_lens import stream_points
from core.notebook.questions.residual import FIRST_READABLE
from ui.common.interventions import show_active, signature
from ui.common.models import current_model
from ui.common.page import end_page, escape_markdown, how_it_is_computed, page_header
from ui.common.predict import predict_first
from ui.common.remote import ask
from ui.residual import compute, controls, views

page_header(
    "Residual stream & logit lens",
    "Every layer reads one shared vector per token, the **residual stream**, and adds its own write "
    "to it. Read that stream after each layer as if it were the last (the logit lens, and a tuned "
    "lens that corrects it), split the model's answer into what every head and MLP wrote (direct "
    "logit attribution), and see the stream as the sum it is.",
    "At which layer does the answer become readable, and which heads write it?",
)

lm = current_model()
sig = signature(lm)
show_active(lm, key="res_iv")
s = controls.settings(lm)
if s is None:
    end_page()
tokens = tuple(int(t) for t in s.prompt.tokens[0])
top = ask(lm, "Reading the model's answer", lambda: compute.final_top(lm, tokens, sig), key="res_top")
if top is None:  # a remote request failed: the message is on the page
    end_page()
answer_words = f"the model's answer {lm.to_string([top])!r}"

step = predict_first(FIRST_READABLE, key="res_predict", context=f"{lm.spec}|{tokens}|{sig}", page="residual",
                     model=lm.spec, cfg=lm.cfg, fields={"answer": escape_markdown(answer_words)},
                     options=stream_points(lm))
if step.ready:
    targets = ((s.answer_id,) * len(tokens) if s.colour_by == "answer"
               else tuple(int(t) for t in lens_lesson.next_token_targets(s.prompt.tokens, top)))
    grid = ask(lm, "Reading the logit lens", lambda: compute.lens_grid(lm, tokens, targets, None, sig),
               key="res_lens")
    if grid is None:
        end_page()
    readable = compute.readability(grid, answer_words)
    step.reveal(readable)
    tabs = st.tabs(views.VIEWS, key=views.VIEW, on_change="rerun", bind="query-params")
    lens_tab, tuned_tab, dla_tab, anatomy_tab, truth_tab = tabs
    if lens_tab.open:
        with lens_tab:
            views.lens_view(lm, grid, readable, s, "Logit lens")
    if tuned_tab.open:
        with tuned_tab:
            views.tuned_view(lm, s, tokens, targets, sig, answer_words)
    if dla_tab.open:
        with dla_tab:
            result = ask(lm, "Direct logit attribution",
                         lambda: compute.dla(lm, tokens, s.answer_id, s.other_id, s.answer, s.other, sig),
                         key="res_dla")
            if result is not None:
                views.dla_view(result, s)
    if anatomy_tab.open:
        with anatomy_tab:
            if views.anatomy_fits(lm, len(tokens)):
                result = ask(lm, "Reading the stream's anatomy",
                             lambda: compute.anatomy(lm, tokens, True, sig), key="res_anatomy")
                if result is not None:
                    views.anatomy_view(result)
    if truth_tab.open:
        with truth_tab:
            lens_key = compute.data_key(lm, "corpus")
            views.truth_view(lm, lens_key if compute.trained(lm, lens_key) else None, sig)

how_it_is_computed(
    readout_lesson, lens_lesson, tuned_lesson, dla_lesson, anatomy_lesson,
    papers=(
        "nostalgebraist (2020), [*interpreting GPT: the logit lens*]"
        "(https://www.lesswrong.com/posts/AcKRB8wDpdaN6v6ru/interpreting-gpt-the-logit-lens).",
        "Belrose et al. (2023), [*Eliciting latent predictions from transformers with the tuned lens*]"
        "(https://arxiv.org/abs/2303.08112).",
        "Din et al. (2023), [*Jump to conclusions: short-cutting transformers with linear "
        "transformations*](https://arxiv.org/abs/2303.09435): the least-squares start of the tuned lens.",
        "Elhage et al. (2021), [*A mathematical framework for transformer circuits*]"
        "(https://transformer-circuits.pub/2021/framework/index.html): the residual stream as a sum, "
        "direct logit attribution.",
        "Wang et al. (2022), [*Interpretability in the wild: a circuit for indirect object identification "
        "in GPT-2 small*](https://arxiv.org/abs/2211.00593): the IOI task.",
    ),
)
