"""The Attention page's controls and its prompt views: one head, all heads, one token's attention.

Clicking a head in any per-head chart selects it (layer and head controls follow) and opens the
"One head" view; the selectboxes remain the keyboard way to do the same.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.interp.attention import patterns as A
from core.interp.attention import verdicts as V
from ui.attention import charts
from ui.attention import frames as F

LAYER, HEAD, VALUE_WEIGHTED = "attn_layer", "attn_head", "attn_value_weighted"
VIEW, QUERY = "attn_view", "attn_query"
VIEWS = ("One head", "All heads", "From one token", "Head types", "Circuits")
WHY_VALUE_WEIGHTED = (
    "Raw attention can mislead: a large weight on a token whose value vector is tiny moves almost "
    "nothing into the residual stream (heads often park attention on the first token for exactly that "
    "reason). Value-weighted attention scales each weight by the size of what that token actually "
    "writes, ||weight x v W_O|| (Kobayashi et al., 2020), rescaled so each row sums to 1."
)


def open_picked(chart_key: str) -> None:
    """on_select callback: the clicked head becomes the chosen one, shown in the One head view."""
    state = st.session_state.get(chart_key)
    if isinstance(state, dict):
        selection = state.get("selection", {})
    else:
        selection = getattr(state, "selection", {})
    picked = (selection or {}).get(charts.PICK) or []
    if picked:
        st.session_state[LAYER] = int(picked[0]["layer"])
        st.session_state[HEAD] = int(picked[0]["head"])
        st.session_state[VIEW] = VIEWS[0]


def show_clickable(chart, key: str) -> None:
    st.altair_chart(chart, key=key, on_select=lambda: open_picked(key), selection_mode=charts.PICK,
                    width="content")


def controls(lm, default: tuple[int, int] = (0, 0)) -> tuple[int, int, bool]:
    """Layer, head and the value-weighting toggle; `default` is the head shown on a first visit.

    Every value is bound to the URL. Streamlit leaves a value out of the URL when it equals the
    widget's default, so the default must be the same on every run: it is always `default` (the
    same head on a fresh link as on the first visit), never "whatever index 0 is" on later runs.
    Otherwise head 0 would be dropped from links and a link to head 2.0 would open 2.<default>."""
    c = lm.cfg
    layer_default = default[0] if default[0] in range(c.n_layers) else 0
    head_default = default[1] if default[1] in range(c.n_heads) else 0
    for key, n, fallback in ((LAYER, c.n_layers, layer_default), (HEAD, c.n_heads, head_default)):
        if key in st.session_state and st.session_state[key] not in range(n):  # another model's value
            st.session_state[key] = fallback
    left, middle, right = st.columns([1, 1, 2], vertical_alignment="bottom")
    layer = left.selectbox("Layer", range(c.n_layers), index=layer_default, key=LAYER, bind="query-params")
    head = middle.selectbox("Head", range(c.n_heads), index=head_default, key=HEAD, bind="query-params")
    can = A.has_values(lm)
    weighted = right.toggle("Value-weighted attention", key=VALUE_WEIGHTED, bind="query-params",
                            help=WHY_VALUE_WEIGHTED if can else NO_VALUES, disabled=not can)
    if not can:
        right.caption(f":material/cloud_off: {NO_VALUES}")
    return int(layer), int(head), bool(weighted) and can


NO_VALUES = ("Value weighting needs each token's value vector v, which lives inside the attention "
             "function; this model runs through nnsight, which reads only module inputs and outputs "
             "(patterns come back, values do not). It works on local models.")


def shown_patterns(run: A.AttentionRun, weighted: bool) -> np.ndarray:
    if weighted and run.value_norm is not None:
        return A.value_weighted(run.pattern, run.value_norm)
    return run.pattern


def _value_title(weighted: bool) -> str:
    return "value-weighted share" if weighted else "attention weight"


def one_head(run: A.AttentionRun, layer: int, head: int, weighted: bool, kinds: np.ndarray | None) -> None:
    labels = F.token_labels(run.str_tokens)
    shown = shown_patterns(run, weighted)[layer, head]
    raw = run.pattern[layer, head]
    frame = F.pattern_frame(shown, raw, labels)
    title = f"Head {layer}.{head}" + (" (value-weighted)" if weighted else "")
    st.altair_chart(charts.pattern_heatmap(frame, labels, title=title, value_title=_value_title(weighted)),
                    width="content")
    bits = float(A.entropy(shown[None])[0]) if run.n_pos > 1 else 0.0
    parts = [f"Head **{layer}.{head}**: entropy **{bits:.2f} bits** per query "
             f"(looking evenly at every visible token would be {A.uniform_entropy(run.n_pos):.2f})"]
    if kinds is not None:
        kind = str(kinds[layer, head]).replace("_", " ")
        parts.append(f"type on repeated random tokens: **{kind or 'none of the types'}**")
    st.markdown("; ".join(parts) + ".")
    induction = A.prompt_induction(run.tokens, run.pattern)
    if induction.n_queries:
        st.markdown(f"From the {induction.n_queries} tokens that occurred earlier in the prompt, this head "
                    f"puts **{induction.share[layer, head]:.0%}** of its attention on the token that "
                    "followed the earlier copy (what an induction head does).")
    share = (None if run.value_norm is None
             else V.first_token_share(raw, A.value_weighted(raw, run.value_norm[layer, head])))
    if share is not None:
        st.markdown(
            f"On the first token this head puts **{share.raw:.0%}** of its raw attention but "
            f"**{share.weighted:.0%}** of its value-weighted attention (queries 1 onwards)"
            + (": much of that weight moves little." if share.moves_little else ".")
        )
    if weighted:
        st.caption(WHY_VALUE_WEIGHTED)


def all_heads(run: A.AttentionRun, weighted: bool, kinds: np.ndarray) -> None:
    shown = shown_patterns(run, weighted)
    n_layers, n_heads = shown.shape[:2]
    size = int(max(56, min(150, 980 // n_heads - 8)))
    entropy = A.entropy(shown) if run.n_pos > 1 else np.zeros((n_layers, n_heads))
    st.markdown(f"Every head at once ({_value_title(weighted)}; darker is more), layer by layer. "
                "Stripes just below the diagonal are previous-token heads, a first column is a head "
                "resting on the first token, a shifted diagonal on a repeated text is an induction "
                "head. Click a picture to open it.")
    show_clickable(charts.head_grid(F.grid_frame(shown, entropy, kinds, size), size=size, columns=n_heads),
                   key="attn_pick_grid")
    st.markdown("**Entropy per head** (bits per query, on this prompt): low is a focused head, high "
                f"a head that spreads out; looking evenly at everything would be "
                f"{A.uniform_entropy(run.n_pos):.2f} bits.")
    frame = F.layer_head_frame(entropy, "entropy")
    show_clickable(charts.layer_head_heatmap(frame, value="entropy", title="entropy (bits)", fmt=".1f",
                                             scheme="blues"),
                   key="attn_pick_entropy")


def from_one_token(run: A.AttentionRun, weighted: bool) -> None:
    labels = F.token_labels(run.str_tokens)
    if st.session_state.get(QUERY) not in range(run.n_pos):
        st.session_state[QUERY] = run.n_pos - 1
    q = int(st.selectbox("Query token (the one looking)", range(run.n_pos), key=QUERY,
                         format_func=lambda i: labels[i], bind="query-params"))
    shown = A.from_token(shown_patterns(run, weighted), q)  # [layer, head, q + 1]
    raw = A.from_token(run.pattern, q)
    n_layers, n_heads = shown.shape[:2]
    order = [F.head_name(a, b) for a in range(n_layers) for b in range(n_heads)]
    chart = charts.from_token_heatmap(F.from_token_frame(shown, raw, labels), labels[: q + 1], order,
                                      value_title=_value_title(weighted))
    show_clickable(chart, key="attn_pick_token")
    if q > 0:
        rest = shown[..., 1:]  # [layer, head, q]: every key but the first token
        layer, head, key = (int(i) for i in np.unravel_index(np.argmax(rest), rest.shape))
        key += 1
        st.markdown(f"From **{labels[q]}**, leaving the first token aside, the strongest look is head "
                    f"**{layer}.{head}** at **{labels[key]}** ({shown[layer, head, key]:.0%}).")
