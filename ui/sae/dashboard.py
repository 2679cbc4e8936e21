"""The feature browser: a sortable list of features, search by token, and one feature's dashboard
(top contexts with highlighted tokens, activation histogram, logit effects, send to steering).

It is one st.fragment, so picking another feature redraws only this part of the page.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from core.interp.sae.features import Context, features_for_token, logit_effects, top_contexts
from core.models.hook_names import hook_label
from ui.common.handoff import Direction, send_direction
from ui.common.page import show_problem
from ui.sae.charts import histogram_chart, logit_chart
from ui.sae.compute import activations, vocab_strings

FEATURE_KEY, PICKED_KEY = "sae_feature", "sae_table_picked"


def feature_frame(run, str_vocab) -> pd.DataFrame:
    r = run.report
    s = r.stats
    return pd.DataFrame({
        "feature": np.arange(len(s.density)),
        "top token": [str_vocab(t) if t >= 0 else "" for t in s.top_token],
        "attribute": r.feature_labels, "match (F1)": r.feature_match,
        "density": s.density, "max act": s.max_act, "mean act": s.mean_act,
    })


def contexts_html(contexts: list[Context]) -> str:
    """Each context as a line of tokens, shaded by the feature's activation (darkest = strongest)."""
    if not contexts:
        return "<p><i>This feature never fires on the held-out text.</i></p>"
    top = max(c.value for c in contexts) or 1.0
    lines = []
    for c in contexts:
        spans = []
        for i, (tok, a) in enumerate(zip(c.tokens, c.acts, strict=True)):
            alpha = min(1.0, max(0.0, a / top))
            border = "border-bottom:2px solid #5b4bd5;" if i == c.center else ""
            title = html.escape(f"{tok!r}: {a:.2f}")
            spans.append(f'<span title="{title}" style="background:rgba(91,75,213,{alpha:.2f});'
                         f'{border}padding:1px 0;border-radius:2px;white-space:pre">'
                         f"{html.escape(tok)}</span>")
        lines.append(f'<div style="font-family:monospace;font-size:13px;margin:3px 0;'
                     f'white-space:nowrap;overflow:hidden;text-overflow:ellipsis">'
                     f'<b style="display:inline-block;width:3.5em">{c.value:.2f}</b>{"".join(spans)}</div>')
    return "".join(lines)


def _pick_from_table(event, frame: pd.DataFrame) -> None:
    rows = event.selection.rows if event is not None else []
    if rows and st.session_state.get(PICKED_KEY) != rows[0]:
        st.session_state[PICKED_KEY] = rows[0]
        st.session_state[FEATURE_KEY] = int(frame.iloc[rows[0]]["feature"])


def _token_search(lm, run) -> None:
    word = st.text_input("Which features fire on a token?", key="sae_search", bind="query-params",
                         placeholder="e.g.  Paris", help="Type a word; a leading space matters.")
    if not word:
        return
    ids = lm.to_tokens(word, prepend_bos=False)[0].tolist()
    if not ids:
        return
    if len(ids) > 1:
        st.caption(f"{word!r} is {len(ids)} tokens; searching the last one.")
    tok = lm.to_str_tokens(ids[-1:])[0]
    if ids[-1] == lm.tokenizer.unk_token_id:
        show_problem(f"{word.strip()!r} is not a word the {lm.name} knows.")
        return
    hits = features_for_token(run.report.features, ids[-1])
    if not hits:
        show_problem(f"{tok!r} does not occur in the held-out text, or no feature fires on it.")
        return
    st.dataframe(pd.DataFrame(hits, columns=["feature", "mean act", "fires on"]), hide_index=True,
                 column_config={"fires on": st.column_config.ProgressColumn(format="percent")},
                 height=min(35 * len(hits) + 40, 250))


def _one_feature(lm, run, j: int, str_vocab) -> None:
    r, sae = run.report, run.sae
    label = r.feature_labels[j]
    st.markdown(f"#### Feature {j}" + (f" · detects **{label}** with F1 {r.feature_match[j]:.2f}"
                                       if label else ""))
    with st.container(horizontal=True):
        st.metric("Density", f"{r.stats.density[j]:.2%}", help="Share of held-out tokens it fires on")
        st.metric("Max activation", f"{r.stats.max_act[j]:.2f}")
        st.metric("Mean when active", f"{r.stats.mean_act[j]:.2f}")
    _, heldout = activations(lm, sae.cfg.hook_name, run.n_docs)
    contexts = top_contexts(r.features, j, heldout, vocab_strings(lm), k=10, before=8, after=2)
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Top-activating contexts** (shade = activation, underline = the token)")
        st.html(contexts_html(contexts))
    with right:
        values = r.features.column(j)
        values = values[values > 0]
        if len(values):
            st.altair_chart(histogram_chart(pd.DataFrame({"act": values})))
        tok = lm.tokenizer
        never = {tok.pad_token_id, tok.unk_token_id} - {tok.bos_token_id, tok.eos_token_id, None}
        top, bottom = logit_effects(sae, lm.W_U, j, k=8, exclude=sorted(never))
        rows = [(str_vocab(i), v, "raises") for i, v in top] + \
               [(str_vocab(i), v, "lowers") for i, v in bottom]
        st.altair_chart(logit_chart(pd.DataFrame(rows, columns=["token", "value", "side"])))
    if st.button("Send to the steering page", key="sae_send", icon=":material/send:"):
        send_direction(Direction(name=f"SAE feature {j}" + (f" ({label})" if label else "") +
                                 f", {hook_label(sae.cfg.hook_name)}", model_spec=lm.spec,
                                 hook_name=sae.cfg.hook_name,
                                 vector=sae.W_dec[j].detach().numpy().copy(), source="sae"))
        st.success(f"Feature {j}'s decoder direction is waiting on the steering page.",
                   icon=":material/check:")


@st.fragment
def feature_browser(lm, run) -> None:
    d_sae = run.sae.cfg.d_sae

    vocab = vocab_strings(lm)

    def str_vocab(i: int) -> str:
        return repr(vocab[int(i)])

    frame = feature_frame(run, str_vocab)
    left, right = st.columns([3, 2])
    with left:
        hide = st.toggle("Hide dead features", value=True, key="sae_hide_dead")
        shown = frame[frame["density"] > 0] if hide else frame
        shown = shown.sort_values("match (F1)", ascending=False).reset_index(drop=True)
        st.caption(f"{len(shown):,} of {d_sae:,} features; click a column to sort, a row to open.")
        event = st.dataframe(
            shown, hide_index=True, height=300, key="sae_table", on_select="rerun",
            selection_mode="single-row",
            column_config={"density": st.column_config.NumberColumn(format="percent"),
                           "match (F1)": st.column_config.NumberColumn(format="%.2f"),
                           "max act": st.column_config.NumberColumn(format="%.2f"),
                           "mean act": st.column_config.NumberColumn(format="%.2f")})
        _pick_from_table(event, shown)
    with right:
        _token_search(lm, run)
    if st.session_state.get(FEATURE_KEY, 0) >= d_sae:
        st.session_state[FEATURE_KEY] = 0
    j = st.number_input("Feature", 0, d_sae - 1, value=int(shown["feature"].iloc[0]) if len(shown) else 0,
                        key=FEATURE_KEY, bind="query-params")
    _one_feature(lm, run, int(j), str_vocab)
