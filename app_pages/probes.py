"""Probes: what each layer knows, and whether the model uses it."""

import streamlit as st

from core.interp.probes.activations import SITES, hook_points
from core.interp.probes.data import BUNDLED, POSITIONS, ProbeDataError
from core.models import ModelLoadError
from ui.common.models import current_model
from ui.common.page import page_header, show_problem
from ui.probes import compute as run
from ui.probes import frames, views

page_header(
    "Probes",
    "Train a linear classifier on a layer's activations to read off a property of the text: the "
    "gender of a sentence's character, a colour, a word's position. Do it for every layer and you "
    "see where the property appears. Then check the probe is honest (held-out names, a control "
    "task with random labels) and whether the model actually **uses** the direction it found.",
    "Which layer knows the character's gender, and does removing that knowledge change the pronoun "
    "the model predicts?",
)
try:
    lm = current_model()
except ModelLoadError as err:
    show_problem(str(err))
    views.finish()

c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
source = c1.selectbox("Dataset", views.SOURCES, format_func=views.source_label,
                      key="probes_dataset", bind="query-params",
                      help="Labelled sentences from the bundled world's ground truth, or your own CSV.")
site = c2.selectbox("Hook site", SITES, format_func=views.SITE_LABELS.get, key="probes_site",
                    bind="query-params", help="Where in each layer the activations are read.")
default = BUNDLED[source].position if source in BUNDLED else "token column, or last"
position = c3.selectbox(
    "Read at", ("default", *POSITIONS), key="probes_position", bind="query-params",
    format_func=lambda p: f"default: {views.POSITION_LABELS.get(default, default)}"
    if p == "default" else views.POSITION_LABELS[p],
    help="The last token, the token carrying the label (marked), or the mean over all tokens.")
n = c4.select_slider("Examples", (200, 500, 1000, 2000, 4000), value=2000, key="probes_n",
                     bind="query-params", disabled=source == "csv",
                     help="How many bundled-world sentences (a quarter of them held out for testing).")

data, identity = views.load_dataset(source, n)
if data is None:
    views.finish()
position = data.default_position if position == "default" else position
if source != "csv" and not lm.is_bundled:
    views.foreign_model_note(lm, data)
data, cut_note = run.capped(lm, data, site)
if cut_note:
    st.caption(f":material/content_cut: {cut_note}")
labels, _ = hook_points(lm.cfg.n_layers, site)

# Bundled datasets on the bundled model take a second or two; anything else waits for a click.
run_key = (lm.spec, identity, site, position)
if not (lm.is_bundled and source != "csv") and st.session_state.get("probes_ran") != run_key:
    st.caption(f"{len(data):,} texts through {lm.name}, then {len(labels)} layers x 3 probes and "
               f"{run.CV_FOLDS}-fold cross-validation.")
    if not st.button("Run the probes", type="primary", key="probes_go", icon=":material/play_arrow:"):
        views.finish()
    st.session_state["probes_ran"] = run_key

try:
    with st.spinner("Running the model once over every text and fitting a probe per layer...",
                    show_time=True):
        report = run.report(lm, lm.spec, data, site, position)
except ProbeDataError as err:
    show_problem(str(err))
    views.finish()
except ValueError as err:  # data the checks above let through but scikit-learn refuses
    show_problem(f"The probes could not be fitted on this data: {err}")
    views.finish()

if "probes_layer" not in st.session_state:  # start where the property becomes readable
    st.session_state["probes_layer"] = frames.detail_layer(report)
elif st.session_state["probes_layer"] >= len(labels):  # the site changed to one with fewer layers
    st.session_state["probes_layer"] = len(labels) - 1
layer = st.select_slider("Layer for the details below", range(len(labels)), key="probes_layer",
                         bind="query-params", format_func=lambda i: labels[i])

st.subheader(f"What each layer knows: {data.name}")
st.caption(data.about)
views.score_view(report, layer, data)
views.layer_view(report, layer)
views.causal_view(lm, report, layer, source)
views.send_view(lm, report, layer, data.name.lower())
views.notice_view(lm, report, source)
views.finish()
