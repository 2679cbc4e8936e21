"""The bundled model: what it is, the world it was trained on, what it can do, and its limits."""

import streamlit as st

from core.bundled import train
from core.bundled.evaluate import HEAD_THRESHOLD
from core.models import BUNDLED
from core.notebook.questions.bundled_model import LIMITS, WORST_LIMIT, can_ask, example, floors_words
from core.world import corpus, grammar
from core.world.datasets import token_groups
from ui.attention.charts import layer_head_heatmap
from ui.bundled_model.compute import continuation, model_card, report
from ui.bundled_model.frames import floors_table, head_score_frame, limits_table
from ui.bundled_model.views import heads_caption
from ui.common.models import load_cached, prompt_box
from ui.common.page import (
    continuation_markdown,
    escape_markdown,
    how_it_is_computed,
    page_header,
    show_problem,
)
from ui.common.predict import predict_first

page_header(
    "The bundled model",
    "A GPT-2 with 4 layers and under a million parameters, trained by this project on text from a "
    "synthetic world whose rules we wrote. Because the generator knows the truth about every "
    "sentence (who is female, which name is the indirect object, where the copy starts), every "
    "other page can check what a technique finds against that truth.",
    "What did this model learn, how do we know, and where does it break?",
)
lm = load_cached(BUNDLED)  # this page is about the bundled model, whatever the sidebar shows
rep = report()
c = lm.cfg
cols = st.columns(5)
cols[0].metric("parameters", f"{c.n_params:,}")
cols[1].metric("layers x heads", f"{c.n_layers} x {c.n_heads}")
cols[2].metric("d_model", c.d_model)
cols[3].metric("vocabulary", f"{c.d_vocab} tokens")
cols[4].metric("context", f"{c.n_ctx} tokens")

st.subheader("The world it was trained on")
families = [f for f in grammar.FAMILY_WEIGHTS if f != "random_ids"]
left, right = st.columns([1, 3])
family = left.selectbox("Document family", families, key="bm_family", bind="query-params",
                        format_func=lambda f: f.replace("_", " "))
seed = left.number_input("Sample seed", 0, 10_000, 0, key="bm_seed", bind="query-params")
left.caption(f"Share of training documents: {grammar.FAMILY_WEIGHTS[family]:.0%}. A sixth family "
             f"(random token ids, repeated; {grammar.FAMILY_WEIGHTS['random_ids']:.0%} of documents) "
             "makes every token appear and teaches copying.")
with right:
    for _, text in corpus.corpus_documents(3, seed=int(seed), families=[family]):
        st.code(text, language=None, wrap_lines=True)
with st.expander("Ground-truth word groups (used by the probes, SAE and steering pages)"):
    st.dataframe({k: ", ".join(w.strip() for w in v) for k, v in token_groups().items()},
                 width="stretch")

st.subheader("What it can do (evaluation report)")
if rep is None:
    show_problem("No evaluation report: run `python -m core.bundled.evaluate`.")
else:
    verdict = "pass every floor" if rep["all_floors_pass"] else "miss at least one floor"
    st.markdown(f"Measured on fresh samples (seed {rep['eval_seed']}); the numbers {verdict}. "
                "The tests re-check these floors on other samples.")
    st.dataframe(floors_table(rep), hide_index=True, width="stretch")
    st.markdown(heads_caption(rep, HEAD_THRESHOLD))
    st.altair_chart(layer_head_heatmap(head_score_frame(rep, HEAD_THRESHOLD), value="score", title="score",
                                       domain=[0, 1], facet="kind", columns=3), key="bm_heads_chart")
    listed = [f"**{kind.replace('_', ' ')}**: " + ", ".join(f"{h['head']} ({h['score']:.2f})"
                                                              for h in heads)
              for kind, heads in rep["heads"].items() if heads]
    st.markdown("The report lists: " + " · ".join(listed) if listed
                else f"The report lists no head scoring {HEAD_THRESHOLD:g} or more.")

st.subheader("Try it")
prompt = prompt_box(lm, key="bm_prompt",
                    default="When Mary and John went to the store, John gave a drink to")
g1, g2, g3 = st.columns(3)
temperature = g1.slider("Temperature", 0.0, 2.0, 0.0, 0.1, key="bm_temp", bind="query-params",
                        help="0 always picks the most likely token.")
n_new = g2.slider("New tokens", 1, 60, 20, key="bm_new", bind="query-params")
gen_seed = g3.number_input("Seed", 0, 10_000, 0, key="bm_gen_seed", bind="query-params")
if prompt is not None:
    ids = tuple(prompt.tokens[0].tolist())
    new_text = continuation(lm, ids, int(n_new), float(temperature), int(gen_seed))
    st.markdown(continuation_markdown(lm.to_string(prompt.tokens[0, 1:]), new_text))

st.subheader("Limits")
if can_ask(rep):
    st.markdown(f"{len(LIMITS)} tests outside the grammar, one prompt of each:\n"
                + "\n".join(f"- **{label}**: {escape_markdown(example(label))}" for label in LIMITS))
    step = predict_first(WORST_LIMIT, key="bm_predict", context="bundled", page="bundled-model",
                         model=BUNDLED, fields={"floors": floors_words(rep)})
    if step.ready:
        step.reveal(rep)
        st.markdown("Measured outside the grammar (no floor; this is where the model breaks):")
        st.dataframe(limits_table(rep, {name: label for label, name in LIMITS.items()}), hide_index=True,
                     width="stretch")
elif rep is not None and rep.get("limits"):
    st.markdown("Measured outside the grammar (no floor; this is where the model breaks):")
    st.dataframe(limits_table(rep), hide_index=True, width="stretch")
card = model_card()
if card:
    with st.expander("Model card", expanded=False):
        st.markdown(card)
how_it_is_computed(grammar, train, papers=(
    "Wang et al. (2022), [*Interpretability in the Wild: a Circuit for Indirect Object Identification in "
    "GPT-2 small*](https://arxiv.org/abs/2211.00593)",
    "Olsson et al. (2022), [*In-context Learning and Induction Heads*]"
    "(https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html)",
))
