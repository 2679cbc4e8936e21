"""LLM Internals Lab: entry point. Builds the navigation, draws the shared sidebar, runs the page."""

import streamlit as st

from ui.common.glossary import glossary_popover
from ui.common.page import EndPage, page_footer
from ui.common.predict import predict_switch
from ui.common.registry import HOME_SCRIPT, ROOT, SECTIONS, topic_at, topics_in
from ui.common.runtime import freeze_long_lived, release_free_memory
from ui.common.sidebar import render_sidebar
from ui.common.url_state import begin as check_link_values

# A local icon file: a ":material/...:" icon would be fetched from a font server, and offline there is none
st.set_page_config(page_title="LLM Internals Lab", page_icon=str(ROOT / "assets" / "favicon.png"),
                   layout="wide")

home = st.Page(HOME_SCRIPT, title="Home", icon=":material/home:", default=True)  # served at /
navigation = {"Start": [home]}
for section in SECTIONS:
    pages = [
        st.Page(t.script, title=t.title, icon=t.icon, url_path=t.url_path) for t in topics_in(section)
    ]
    if pages:
        navigation[section] = pages

page = st.navigation(navigation)
link_values = check_link_values(page.url_path)  # before any widget: notes what a link set in vain
topic = topic_at(page.url_path)
if topic is None or topic.uses_model:
    render_sidebar(page.url_path)
predict_switch()
glossary_popover()
try:
    page.run()
except EndPage:
    pass  # a page ended early (bad input, nothing to show yet): the foot and the link note still follow
finally:
    release_free_memory()  # what the page freed goes back to the OS, not kept per thread (ui.common.runtime)
freeze_long_lived()  # once per process: Streamlit's collection after each run skips the imports
if topic is not None:
    page_footer(topic.url_path, topic.uses_model)
link_values.finish()
