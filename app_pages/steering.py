"""Steering vectors: push a direction into the residual stream and watch the text change."""

import streamlit as st

from core.interp.steering import effect as steering_effect
from core.interp.steering import vectors as steering
from core.models.hook_names import layer_of
from ui.common.models import current_model, prompt_box
from ui.common.page import how_it_is_computed, page_header, show_problem
from ui.steering import compute, views
from ui.steering.charts import effect_chart, sweep_heatmap
from ui.steering.controls import pick_settings, pick_source

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
left, right = st.columns([2, 3])
prompt_slot = right.container()
source = pick_source(lm, left, right)
with prompt_slot:
    default_prompt = "One day, Mary went to the park. She was" if lm.is_bundled else "Yesterday I went to the"
    prompt = prompt_box(lm, key="steer_prompt", default=default_prompt, height=68)
if source is None or prompt is None:
    st.stop()
n_prompt = prompt.tokens.shape[1]
s = pick_settings(lm, source, n_prompt)

try:
    sv = compute.steering_vector(lm, lm.spec, source, s.layer, prompt.text)
    targets = compute.targets(lm, lm.spec, source.measure, source.pairs)
except ValueError as err:  # our own checks: pairs with nothing to contrast, no word to measure...
    show_problem(str(err))
    st.stop()
except Exception as err:  # anything else torch or a tokenizer raises on odd input
    show_problem(f"The steering vector could not be built from this input on {lm.name} "
                 f"({type(err).__name__}: {err}). Try shorter contrast pairs, in words the model knows.")
    st.stop()
layer = layer_of(sv.hook_name)
layer = s.layer if layer is None else layer
norm = compute.stream_norm(lm, lm.spec, sv.hook_name, source, prompt.text)
pairs = f" of {sv.n_pairs} pair{'s' * (sv.n_pairs != 1)}" if sv.n_pairs else ""
st.caption(f"Vector: {sv.method}{pairs}, {sv.label}, at `{sv.hook_name}`. Its norm is {sv.norm:.2f} and "
           f"the stream there is typically {norm:.2f} long, so coefficient {s.coefficient:+.1f} adds a push "
           f"{abs(s.coefficient) * sv.norm / norm:.2f}x the stream's size.")

# -- the same seed, with and without the push -------------------------------------------------------
args = (prompt.text, source, s.layer)
sampling = (s.start_pos, s.temperature, s.top_k, s.seed, s.n_new)
with st.spinner("Writing...", show_time=True):
    plain = compute.continuation(lm, lm.spec, *args, 0.0, *sampling)
    steered = compute.continuation(lm, lm.spec, *args, s.coefficient, *sampling)
left, right = st.columns(2)
with left:
    views.continuation_card(lm, "**Unsteered**", prompt.text, plain, targets)
with right:
    where = "every position" if s.start_pos == 0 else f"position {s.start_pos} on"
    views.continuation_card(lm, f"**Steered**: coefficient {s.coefficient:+.1f} at layer {layer}, "
                                f"{where}", prompt.text, steered, targets)
views.word_legend(targets)

# -- what to notice: the numbers at this coefficient -------------------------------------------------
st.subheader("What it did to the next word")
effect = compute.point_effect(lm, lm.spec, source, s.layer, prompt.text, s.coefficient, s.start_pos)
views.effect_metrics(effect, targets, s.coefficient)
if lm.is_bundled and source.kind == "concept":
    views.ground_truth(effect, targets, source.measure, layer, s.coefficient)

# -- the effect against the coefficient, with the controls ------------------------------------------
st.subheader("Effect against coefficient, with controls")
with st.spinner("Measuring every coefficient...", show_time=True):
    curves = compute.curves(lm, lm.spec, source, s.layer, prompt.text, s.start_pos, s.temperature,
                            s.top_k, s.seed)
st.altair_chart(effect_chart(views.curve_frame(curves, targets), s.coefficient,
                             order=views.metric_order(targets)))
st.caption("Controls: the **opposite sign** should mirror the vector, and a **random vector of the same "
           "norm** should barely move the concept words; if it moves them as much, the effect is the "
           "size of the push, not its direction. Perplexity: a 20-token continuation of your prompt, "
           "scored by the unsteered model; it climbs when the push makes text the model finds odd.")

# -- which layer, which coefficient ----------------------------------------------------------------
st.subheader("Layer x coefficient")
if source.kind == "direction":
    st.caption("A handed-over direction belongs to one hook point, so there is no layer to sweep.")
else:
    key = ("steer_sweep_ran", lm.spec, source, s.start_pos)
    if compute.sweep_runs_by_itself(lm) or st.session_state.get("steer_sweep_key") == key:
        with st.spinner("Building a vector at every layer...", show_time=True):
            sweep = compute.sweep(lm, lm.spec, source, s.start_pos)
        st.altair_chart(sweep_heatmap(views.sweep_frame(sweep), s.layer, s.coefficient,
                                      title=f"Change of P({targets.plus_name}) - P({targets.minus_name}) "
                                            "from the unsteered model"))
        st.caption("Each row builds its own mean-difference vector at that layer. The outlined cell is "
                   "the current setting (the nearest coefficient).")
    elif st.button("Compute the layer x coefficient map", key="steer_sweep_button",
                   help=f"One vector per layer, each measured at {len(compute.SWEEP_COEFFICIENTS)} "
                        "coefficients; takes a while on a model this size."):
        st.session_state["steer_sweep_key"] = key
        st.rerun()

how_it_is_computed(steering, steering_effect, papers=(
    "Turner et al. 2023, *Steering Language Models With Activation Engineering* (ActAdd), "
    "arXiv:2308.10248",
    "Rimsky et al. 2024, *Steering Llama 2 via Contrastive Activation Addition* (CAA), "
    "arXiv:2312.06681",
    "The steering-vectors and repeng libraries; Neuronpedia's steering interface",
))
