"""Probes: what each layer knows, and whether the model uses it."""

import streamlit as st

from core.interp.probes.activations import hook_points, vector_width
from core.interp.probes.data import ProbeDataError
from core.interp.probes.verdicts import READABLE_AT, detail_index
from core.models import ModelLoadError
from core.models.budget import MemoryBudgetError
from core.notebook.questions.probes import FIRST_READABLE
from ui.common.budget import check_session_fits
from ui.common.models import current_model
from ui.common.page import escape_markdown, page_header, show_problem
from ui.common.predict import predict_first
from ui.probes import compute as run
from ui.probes import controls, views

LEARN = ("Train a linear classifier on a layer's activations to read off a property of the text: the "
         "gender of a sentence's character, a colour, a word's position. Do it for every layer and you "
         "see where the property appears. Then check the probe is honest (held-out names, a control "
         "task with random labels) and whether the model actually **uses** the direction it found.")

header = st.container()
try:
    lm = current_model()
except ModelLoadError as err:
    with header:
        page_header("Probes", LEARN, views.QUESTIONS["gender"])
    show_problem(str(err))
    views.finish()
chosen = controls.controls()
with header:  # the question follows the dataset chosen below it
    page_header("Probes", LEARN, views.QUESTIONS[chosen.source])

data = views.load_dataset(chosen.source, chosen.n)
if data is None:
    views.finish()
position = data.default_position if chosen.position == "default" else chosen.position
if chosen.source != "csv" and not lm.is_bundled:
    views.foreign_model_note(lm, data)
points = hook_points(lm.cfg.n_layers, chosen.site)
data, cut_note = run.capped(lm, data, points)
if cut_note:
    st.caption(f":material/content_cut: {cut_note}")
splits = views.planned_splits(data)  # cheap: refuses data that cannot be split before the model runs
if splits is None:
    views.finish()
name = escape_markdown(data.name)

step = predict_first(
    FIRST_READABLE, key="probes_predict", context=f"{lm.spec}|{data.key}|{chosen.site}|{position}",
    page="probes", model=lm.spec, cfg=lm.cfg, options=points.layers,
    fields=dict(site=controls.SITE_LABELS[chosen.site], property=name,
                threshold=f"{READABLE_AT:.0%} held-out accuracy" if data.target == "class"
                else f"a held-out R² of {READABLE_AT:.2f}"))
if not step.ready:
    views.finish()

# Bundled datasets on the bundled model take a second or two; anything else waits for a click.
run_key = (lm.spec, data.key, chosen.site, position)
if not (lm.is_bundled and chosen.source != "csv") and st.session_state.get("probes_ran") != run_key:
    st.caption(f"{len(data):,} texts through {lm.name}, then {len(points)} layers x 3 probes and "
               f"{run.SETTINGS.cv_folds}-fold cross-validation.")
    if not st.button("Run the probes", type="primary", key="probes_go", icon=":material/play_arrow:"):
        views.finish()
    st.session_state["probes_ran"] = run_key

try:
    check_session_fits("probes_activations", len(data) * len(points) * vector_width(lm.cfg, chosen.site) * 4,
                       what=f"the activations of {len(data):,} texts at {len(points)} layers",
                       lower="fewer examples, or another hook site than the MLP neurons")
    with st.spinner("Running the model once over every text and fitting a probe per layer...",
                    show_time=True):
        report = run.report(lm, data, points, position, splits)
except (ProbeDataError, MemoryBudgetError) as err:
    show_problem(str(err))
    views.finish()
except ValueError as err:  # data the checks above let through but scikit-learn refuses
    show_problem(f"The probes could not be fitted on this data: {err}")
    views.finish()

step.reveal(report)
layer = controls.layer_control(points, lm.cfg.n_layers, default=report.layers[detail_index(report)])
index = report.index(layer)
st.subheader(f"What each layer knows: {name}")
st.caption(escape_markdown(data.about))
views.score_view(report, index, data)
views.layer_view(report, index)
views.causal_view(lm, report, index, chosen.source)
views.send_view(lm, report, index, data.name.lower())
views.notice_view(lm, report, chosen.source)
views.finish()
