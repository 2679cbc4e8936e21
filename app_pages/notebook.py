"""Lab notebook: every prediction, what was measured, and the notes, kept across pages."""

import streamlit as st

from core.notebook import calibration
from ui.common import notebook
from ui.common.page import how_it_is_computed, page_header
from ui.notebook import views

page_header(
    "Lab notebook",
    "Every page asks you to predict before it shows a result, then grades your prediction against what "
    "it measured. Save those, and notes under four headings (what worked, what didn't, a surprise, an "
    "open question), and this page keeps them: a table with a link that reproduces each experiment, a "
    "timeline, and how well calibrated your confidence is.",
    "Can you predict what a model will do before you run it, and are you as right as you say you are?",
)

place = notebook.where()
st.caption(f":material/database: Entries are kept in {place.words}.")
if "is_logged_in" in st.user.to_dict() and not st.user.is_logged_in:
    st.button("Sign in to keep your notebook", on_click=st.login, icon=":material/login:")

views.add_note_form()  # before reading the entries, so a note saved in this run is listed
entries = notebook.entries()
views.summary(entries)
table, timeline, calib, exchange = st.tabs(["Entries", "Timeline", "Calibration", "Export & import"],
                                           key="nb_tab", bind="query-params")
with table:
    views.entries_table(entries)
with timeline:
    views.timeline(entries)
with calib:
    views.calibration(entries)
with exchange:
    views.export_import(entries)

how_it_is_computed(
    calibration,
    papers=(
        "Brier (1950), [*Verification of forecasts expressed in terms of probability*]"
        "(https://doi.org/10.1175/1520-0493(1950)078%3C0001:VOFEIT%3E2.0.CO;2), Monthly Weather Review.",
        "Crouch, Fagen, Callan and Mazur (2004), [*Classroom demonstrations: learning tools or "
        "entertainment?*](https://doi.org/10.1119/1.1707018), American Journal of Physics: predicting "
        "first is what makes a demonstration teach.",
        "Miller, Lasry, Chu and Mazur (2013), [*Role of physics lecture demonstrations in conceptual "
        "learning*](https://doi.org/10.1103/PhysRevSTPER.9.020113), Phys. Rev. ST PER.",
    ),
)
