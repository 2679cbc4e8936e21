"""Steering vectors: push a direction into the residual stream and watch the text change."""

import logging

import streamlit as st

from core.interp.steering import effect as steering_effect
from core.interp.steering import fluency as steering_fluency
from core.interp.steering import vectors as steering
from core.interp.steering import verdict as steering_verdict
from core.models.hook_names import stream_layer_of
from core.notebook.questions.steering import MORE_CONCEPT_WORDS
from ui.common.interventions import show_active, signature
from ui.common.layers import show_layer
from ui.common.models import current_model, prompt_box
from ui.common.page import end_page, how_it_is_computed, page_header, show_problem
from ui.common.predict import predict_first
from ui.common.remote import ask
from ui.steering import compute, handoffs, views
from ui.steering.charts import effect_chart, sweep_heatmap
from ui.steering.controls import TYPED, pick_settings, pick_source

page_header(
    "Steering vectors",
    "A concept like *happy* or *she* is often a direction in the residual stream. Take the difference "
    "of the model's activations on texts that differ only in that concept, add it back (times a "
    "coefficient) while the model writes, and the text moves toward the concept. You will see the "
    "same text with and without the push, and measure how much it moved and what it cost.",
    "Does adding one vector at one layer change what the model writes, and is it the concept or just "
    "the size of the push?",
)

lm = current_model()
own = handoffs.own_name()  # this page's own push, if kept on for the other pages: never applied twice
handoffs.received_circuits(lm)
show_active(lm, key="steer_iv", exclude=(own,))
iv = signature(lm, exclude=(own,))
left, right = st.columns([2, 3])
prompt_slot = right.container()
source = pick_source(lm, left, right)
with prompt_slot:
    default_prompt = "One day, Mary went to the park. She was" if lm.is_bundled else "Yesterday I went to the"
    prompt = prompt_box(lm, key="steer_prompt", default=default_prompt, height=68)
if source is None or prompt is None:
    end_page()
n_prompt = prompt.tokens.shape[1]
s = pick_settings(lm, source, n_prompt)

try:
    sv = ask(lm, "Building the steering vector",
             lambda: compute.steering_vector(lm, source, s.layer, prompt.text, iv, own), key="steer_vector")
    targets = compute.targets(lm, source)
except ValueError as err:  # our own checks: pairs with nothing to contrast, no word to measure...
    show_problem(str(err))
    end_page()
except Exception:  # anything else torch or a tokenizer raises on odd input: logged, not shown
    logging.getLogger(__name__).exception("steering vector failed on %s", lm.name)
    show_problem(f"The steering vector could not be built from this input on {lm.name}. Try shorter "
                 "contrast pairs, in words the model knows, or another layer.")
    end_page()
if sv is None:  # a remote request failed: the message is on the page
    end_page()
layer = stream_layer_of(sv.hook_name)  # None only for a handed-over direction off the stream
if layer is not None:
    show_layer(lm.cfg.n_layers, layer, verb="added")
norm = ask(lm, "Measuring the stream's size",
           lambda: compute.stream_norm(lm, sv.hook_name, source, prompt.text, iv, own), key="steer_norm")
if norm is None:
    end_page()
st.caption(f"Vector: {views.vector_words(sv, source)}. Its norm is {sv.norm:.2f} and the stream there is "
           f"typically {norm:.2f} long, so coefficient {s.coefficient:+.1f} adds a push "
           f"{abs(s.coefficient) * sv.norm / norm:.2f}x the stream's size.")
handoffs.keep_toggle(lm, sv, source.label, layer, s.coefficient, s.start_pos)

where = views.layer_words(layer) if layer is not None else "at the direction's own hook point"
where += ", every position" if s.start_pos == 0 else f", from position {s.start_pos} on"
context = "|".join(map(str, (lm.spec, source.kind, source.measure, source.label, source.method,
                              source.toward, source.pairs, s, prompt.text)))
step = predict_first(MORE_CONCEPT_WORDS, key="steer_predict", context=context, page="steering",
                     model=lm.spec, fields=views.question_fields(targets, s.coefficient, where))
if not step.ready:
    end_page()

# -- the same prompt and seed, with and without the push --------------------------------------------
with st.spinner("Writing...", show_time=True):
    outcome = ask(lm, "Writing both texts and measuring the push",
                  lambda: compute.outcome(lm, source, s.layer, prompt.text, s.coefficient, s.start_pos,
                                          s.sampling, iv, own), key="steer_outcome")
if outcome is None:
    end_page()
step.reveal(outcome)
texts = outcome.texts
left, right = st.columns(2)
with left:
    views.continuation_card(lm, "**Unsteered**", prompt.text, texts.plain[0], texts.plain_perplexity[0],
                            targets)
with right:
    views.continuation_card(lm, f"**Steered**: coefficient {s.coefficient:+.1f} at {where}", prompt.text,
                            texts.steered[0], texts.steered_perplexity[0], targets)
views.word_legend(targets)
st.caption(views.same_seed_note(outcome))

# -- what to notice: the numbers at this coefficient, and the verdict ---------------------------------
st.subheader("What it did to the next word")
views.effect_metrics(outcome.point, targets)
concept = source.measure if source.measure != TYPED else None
views.verdict_box(outcome, steering_verdict.verdict(outcome), layer=layer, concept=concept)

# -- the effect against the coefficient, with the controls ------------------------------------------
st.subheader("Effect against coefficient, with controls")
with st.spinner("Measuring every coefficient...", show_time=True):
    curves = ask(lm, "Measuring every coefficient",
                 lambda: compute.curves(lm, source, s.layer, prompt.text,
                                        compute.curve_settings(s.start_pos, s.sampling), iv, own),
                 key="steer_curves")
if curves is not None:
    st.altair_chart(effect_chart(views.curve_frame(curves, targets), s.coefficient,
                                 order=views.metric_order(targets)))
st.caption("Controls: the **opposite sign** should mirror the vector, and a **random vector of the same "
           "norm** should barely move the concept words; if it moves them as much, the effect is the "
           f"size of the push, not its direction. Perplexity: a {compute.FLUENCY_TOKENS}-token "
           "continuation of your prompt (your seed and temperature), scored by the unsteered model; "
           "it climbs when the push makes text the model finds odd.")

# -- which layer, which coefficient ----------------------------------------------------------------
st.subheader("Layer x coefficient")
if source.kind == "direction":
    st.caption("A handed-over direction belongs to one hook point, so there is no layer to sweep.")
elif not compute.sweep_fits(lm, source):
    st.info(f"Building a vector at every layer reads the stream at every layer and every token of the "
            f"pairs: {compute.sweep_bytes(lm, source) / 1e6:,.0f} MB from this model, more than the "
            f"{compute.MAX_READ_BYTES / 1e6:,.0f} MB a request to a model elsewhere may bring back. The map "
            "runs on local models (and small remote ones); change the layer above to try one at a time.",
            icon=":material/cloud_off:")
else:
    sweep_settings = compute.curve_settings(s.start_pos, s.sampling, compute.SWEEP_COEFFICIENTS)
    key = ("steer_sweep_ran", lm.spec, source, s.start_pos)
    sweep = None
    if compute.sweep_runs_by_itself(lm) or st.session_state.get("steer_sweep_key") == key:
        with st.spinner("Building a vector at every layer...", show_time=True):
            sweep = ask(lm, "Building a vector at every layer",
                        lambda: compute.sweep(lm, source, sweep_settings, iv, own), key="steer_sweep")
    if sweep is not None:
        st.altair_chart(sweep_heatmap(views.sweep_frame(sweep), views.sweep_label(s.layer), s.coefficient,
                                      title=f"Change of P({targets.plus_name}) - P({targets.minus_name}) "
                                            "from the unsteered model"))
        st.caption("Each row builds its own mean-difference vector in the stream after that layer. The "
                   "outlined cell is the current setting (the nearest coefficient).")
    elif st.session_state.get("steer_sweep_key") != key and st.button(
            "Compute the layer x coefficient map", key="steer_sweep_button",
            help=f"One vector per layer, each measured at {len(compute.SWEEP_COEFFICIENTS)} "
                 "coefficients; takes a while on a model this size."):
        st.session_state["steer_sweep_key"] = key
        st.rerun()

how_it_is_computed(steering, steering_effect, steering_fluency, steering_verdict, papers=(
    "Turner et al. 2023, [*Steering Language Models With Activation Engineering*]"
    "(https://arxiv.org/abs/2308.10248) (ActAdd)",
    "Rimsky et al. 2024, [*Steering Llama 2 via Contrastive Activation Addition*]"
    "(https://arxiv.org/abs/2312.06681) (CAA)",
    "The [steering-vectors](https://github.com/steering-vectors/steering-vectors) and "
    "[repeng](https://github.com/vgel/repeng) libraries; Neuronpedia's steering interface",
))
