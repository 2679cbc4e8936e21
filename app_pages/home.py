"""Home: the path through the lab, where to start, and a card per topic."""

import streamlit as st

from ui.common.registry import SECTIONS, TOPICS, topics_in

st.title("LLM Internals Lab")
st.markdown(
    "Build intuition for what happens inside language models by **running experiments**, not by "
    "reading about them. Start with a network small enough to follow every number, end with the "
    "tools researchers use on GPT-2-class models. Every technique is checked against a bundled "
    "model whose internals we know, because we wrote the world it was trained on."
)
with st.container(border=True):
    st.markdown("**The path.** Each page asks you to predict before it shows a result, grades the "
                "prediction against what it measures, and links to the next page at its foot.")
    st.markdown(" :material/arrow_forward: ".join(t.title for t in TOPICS))
    if TOPICS:
        st.page_link(TOPICS[0].script, label=f"Start here: {TOPICS[0].title}", icon=":material/flag:")
st.caption("Every page works offline on the bundled model. Models from the Hugging Face hub (GPT-2, "
           "Pythia, SmolLM2, ...) need a network the first time; once in the local cache they load "
           "offline, and the sidebar marks which ones are.")
for section in SECTIONS:
    topics = topics_in(section)
    if not topics:
        continue
    st.subheader(section)
    columns = st.columns(3)
    for i, topic in enumerate(topics):
        with columns[i % 3].container(border=True):
            st.page_link(topic.script, label=topic.title, icon=topic.icon)
            st.caption(topic.blurb)
