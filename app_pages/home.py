"""Home: the learning path and a card per topic."""

import streamlit as st

from ui.common.registry import SECTIONS, topics_in

st.title("LLM Internals Lab")
st.markdown(
    "Build intuition for what happens inside language models by **running experiments**, not by "
    "reading about them. Start with a network small enough to follow every number, end with the "
    "tools researchers use on GPT-2-class models. Every technique is checked against a bundled "
    "model whose internals we know, because we wrote the world it was trained on."
)
st.markdown(
    "**The path:** an XOR network trained from scratch :material/arrow_forward: a small transformer "
    "trained on a synthetic world :material/arrow_forward: GPT-2-class models from the hub "
    ":material/arrow_forward: interpretability tools (probes, sparse autoencoders, steering) "
    ":material/arrow_forward: what fine-tuning changes and forgets."
)
for section in SECTIONS:
    topics = topics_in(section)
    if not topics:
        continue
    st.subheader(section)
    columns = st.columns(3)
    for i, topic in enumerate(topics):
        with columns[i % 3].container(border=True):
            st.page_link(topic.path, label=topic.title, icon=topic.icon)
            st.caption(topic.blurb)
