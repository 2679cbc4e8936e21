"""The Attention page's weight- and data-level views: head types (with the ground truth next to
them on the bundled model) and the OV / QK circuits of the chosen head."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.interp.attention import patterns as A
from core.interp.attention import verdicts as V
from core.interp.attention import weight_circuits as C
from core.interp.residual.reads import has_weights
from ui.attention import charts, compute
from ui.attention import frames as F
from ui.attention.views import show_clickable
from ui.common.interventions import signature

SHOWN_KINDS = ("previous_token", "induction", "duplicate_token", "first_token", "current_token",
               "local_window")
LISTED_KINDS = ("previous_token", "induction", "duplicate_token", "first_token")  # the report's kinds
THRESHOLD = A.TYPE_THRESHOLD  # a head counts as a type from this score on (as in the evaluation report)


def _name(kind: str) -> str:
    return kind.replace("_", " ")


def _heads(rows) -> str:
    return ", ".join(f"{a}.{b}" for a, b, *_ in rows) or "none"


def head_types(lm, scores: dict[str, np.ndarray], listed: dict) -> None:
    st.markdown(
        f"Each head scored on {compute.score_seqs(lm)} sequences of {compute.SCORE_HALF_LEN} random tokens "
        "repeated twice (not on your prompt): random text leaves copying as the only reason to look "
        "back at an earlier copy. 1 means all of the head's attention goes to the target every time. "
        + ("Outlined: the heads the evaluation report lists (the ground truth). " if listed else "")
        + "Click a head to open its pattern on your prompt."
    )
    if compute.score_seqs(lm) < compute.SCORE_SEQS:
        st.caption(f":material/cloud: {compute.score_seqs(lm)} sequences rather than {compute.SCORE_SEQS}: "
                   "their patterns come back from a model elsewhere, and one request brings back at most "
                   f"{compute.MAX_READ_BYTES / 1e6:,.0f} MB.")
    frame = F.head_types_frame(scores, listed, SHOWN_KINDS)
    show_clickable(charts.layer_head_heatmap(frame, value="score", title="score", domain=[0, 1],
                                             facet="kind", facet_order=[_name(k) for k in SHOWN_KINDS],
                                             columns=3), key="attn_pick_types")
    st.caption("previous token: attention to q - 1. induction: to the token after the earlier copy. "
               "duplicate token: to the earlier copy itself. first token: to position 0 (a resting place). "
               "current token: to itself. local window: to the 3 most recent tokens.")
    if not lm.is_bundled:
        st.caption("This model has no ground truth to compare with; on the bundled model the heads its "
                   "evaluation report lists are outlined and checked here.")
        return
    if not listed:
        st.caption("The bundled model's evaluation report is missing, so there is nothing to compare with.")
        return
    st.markdown("**What to notice: the ground truth next to what the scores find now**")
    lines = []
    for kind in LISTED_KINDS:
        check = V.check_listing(kind, scores[kind], [(a, b) for a, b, _ in listed.get(kind, [])], THRESHOLD)
        best = f"{check.best[0]}.{check.best[1]}"
        lines.append(f"- **{_name(kind)}**: the report lists {_heads(check.listed)}; scored now, "
                     f"{_heads(check.found)} reach {check.threshold} (best: {best} at "
                     f"{check.best_score:.2f}). " + ("Same heads." if check.same else "Not the same set."))
    st.markdown("\n".join(lines))


def induction_heads(scores: dict[str, np.ndarray], listed: dict) -> tuple[list[tuple[int, int]], str]:
    """The induction heads to check: the report's on the bundled model, else those reaching THRESHOLD."""
    if listed.get("induction"):
        return [(a, b) for a, b, _ in listed["induction"]], "the evaluation report lists"
    found = V.heads_at_least(scores["induction"], THRESHOLD)
    return list(found), f"score at least {THRESHOLD} as induction heads"


def copying_words(verdict: V.CopyingVerdict | None, source: str) -> str:
    """The copying verdict in words, with the measured numbers."""
    if verdict is None:
        return "No head scores as an induction head here, so there is no induction head to check."
    parts = []
    for i, (a, b) in enumerate(verdict.heads):
        part = f"{a}.{b}: copying score {verdict.copying[i]:+.2f}"
        if verdict.median_rank is not None:
            part += (f", a token's own rank in its OV row {verdict.median_rank[i]:.0f} of "
                     f"{verdict.n_vocab} (median), top 5 for {verdict.top5[i]:.0%} of tokens")
        parts.append(part)
    said = (f"Yes, the induction heads copy (every one scores at least {verdict.threshold:+.1f})"
            if verdict.all_copy else
            f"Not every induction head copies strongly (a score of at least {verdict.threshold:+.1f} counts)")
    median = ("" if verdict.others_median is None else
              f" The other heads' median copying score: {verdict.others_median:+.2f}.")
    return f"**{said}.** The heads that {source}: " + "; ".join(parts) + "." + median


MODE_LABELS = {"in_context": "as the layer reads it", "direct": "raw embedding W_E"}
MODE_WORDS = {
    "in_context": "each token as the layer receives it in the text [BOS, token], earlier layers included",
    "direct": "each token's raw embedding row, earlier layers ignored",
}


def _mode(lm) -> str:
    """Which E to use: a choice on small vocabularies; the raw embedding on big ones."""
    if C.auto_mode(lm) == "direct":
        st.caption("E is the raw embedding here: this vocabulary is too big to run every token through "
                   "the model.")
        return "direct"
    return st.segmented_control("Token as E", list(MODE_LABELS), format_func=MODE_LABELS.get,
                                default="in_context", required=True, key="attn_ov_mode", bind="query-params",
                                help="In context: the residual stream a layer actually reads for a token "
                                     "(after earlier layers). Raw: the embedding row alone.")


CIRCUITS_LOCAL = (
    "The circuits run on local models only: the OV circuit multiplies whole weight matrices (the "
    "embedding, W_V, W_O and the unembedding: for a large model gigabytes), and the QK profile reads the "
    "pre-softmax scores inside the attention function, where nnsight has no hook point. This model's "
    "weights are not in this process (it runs through nnsight{where}).")


def circuits(lm, run: A.AttentionRun, layer: int, head: int, scores: dict, listed: dict) -> None:
    if not has_weights(lm):
        st.info(CIRCUITS_LOCAL.format(where=", on NDIF" if lm.is_remote else ""), icon=":material/cloud_off:")
        return
    heads, source = induction_heads(scores, listed)
    st.markdown("**OV circuit: what each head writes when it attends to a token.** The copying score "
                "is sum(eigenvalues) / sum(|eigenvalues|) of the head's token-to-logit table "
                "E W_V W_O U (Elhage et al., 2021): +1 copies, -1 suppresses. Outlined: induction heads.")
    mode = _mode(lm)
    st.caption(f"E here is {MODE_WORDS[mode]}.")
    iv = compute.runs_model(mode, signature(lm))
    copying = compute.copying_table(lm, mode, iv)
    diagonal = compute.diagonal_table(lm, mode, iv)
    left, right = st.columns(2)
    with left:
        show_clickable(charts.layer_head_heatmap(
            F.layer_head_frame(copying, "copying", heads), value="copying", title="copying score",
            scheme="purpleorange", domain=[-1, 1]), key="attn_pick_copying")
    with right:
        if diagonal is not None:
            show_clickable(charts.layer_head_heatmap(
                F.layer_head_frame(diagonal["top5"], "top5", heads), value="top5",
                title="top-5 share", domain=[0, 1]), key="attn_pick_diagonal")
            st.caption("Share of tokens that are among the 5 tokens their own OV row pushes up most.")
        else:
            one = compute.diagonal_one(lm, layer, head, mode, iv)
            st.metric(f"Head {layer}.{head}: a token's own rank in its OV row (median)",
                      f"{one.median_rank:,.0f} of {one.n_vocab:,}",
                      help=f"Measured on {one.n_tokens} sampled tokens; 1 is a perfect copier. The table "
                           "for every head is skipped for big vocabularies.")
    st.markdown(copying_words(V.copying_verdict(copying, heads, diagonal), source))

    st.markdown(f"**Head {layer}.{head}: the tokens each token of your prompt pushes up** (if the head "
                "attends to it), and where the token itself ranks.")
    usable = set(C.vocab_ids(lm).tolist())
    src = [t for t in dict.fromkeys(run.tokens) if t in usable][:16]
    if not src:
        st.caption("The prompt has no ordinary tokens to show.")
        return
    top = compute.ov_top(lm, layer, head, tuple(src), mode, sig=iv)
    frame = F.ov_frame(lm.to_str_tokens(src), [lm.to_str_tokens(row) for row in top.top_ids.tolist()],
                       top.top_values, top.self_rank)
    st.dataframe(frame, hide_index=True)

    st.markdown(f"**QK circuit: which distances does layer {layer} prefer?** Mean pre-softmax score "
                "by distance on random tokens, each row centred (above 0: preferred). A previous-token "
                "head peaks at 1, a current-token head at 0; the first token is left out.")
    profile = compute.qk_profile(lm, layer, signature(lm))
    st.altair_chart(charts.distance_lines(F.distance_frame(profile, layer), F.head_name(layer, head)),
                    width="content")
    best = int(np.nanargmax(profile[head, :25]))
    st.caption(f"Head {layer}.{head} scores distance {best} highest (by {profile[head, best]:+.2f} over "
               f"the row mean).")


def what_to_notice(lm, run: A.AttentionRun, scores: dict[str, np.ndarray], listed: dict,
                   verdict: bool = True) -> None:
    """On the bundled model: the report's heads, what they do on this prompt, and whether its
    induction heads copy (all measured)."""
    if not (lm.is_bundled and listed):
        return
    heads, source = induction_heads(scores, listed)
    with st.container(border=True):
        previous = listed.get("previous_token", [])
        table = scores["previous_token"]
        a, b = np.unravel_index(np.argmax(table), table.shape)
        prev = (f"previous-token heads {_heads(previous)}" if previous else
                f"no previous-token head scoring {THRESHOLD} or more (the strongest now: "
                f"{a}.{b} at {table[a, b]:.2f})")
        lines = [f"**What to notice on the bundled model.** Its evaluation report lists {prev}, and "
                 f"induction heads {_heads(heads)}."]
        here = A.prompt_induction(run.tokens, run.pattern)
        found = V.prompt_induction_verdict(here.share, here.n_queries, scores["induction"], heads)
        if found is None:
            lines.append("Your prompt repeats no token, so there is nothing for an induction head to copy: "
                         "repeat part of it to see them at work.")
        else:
            rows = zip(found.heads, found.shares, found.random_scores, strict=True)
            said = ", ".join(f"{x}.{y} {s:.0%} (on random repeated tokens {r:.0%})" for (x, y), s, r in rows)
            lines.append(f"On your prompt, from the {found.n_queries} tokens seen before, they put this much "
                         f"attention on the token that followed the earlier copy: {said}.")
            if found.at_work:
                lines.append("Open one: in the second copy, a stripe parallel to the main diagonal, one "
                             "copy-length to the left.")
            else:
                lowest = min(found.random_scores)
                lines.append(f"None reaches {found.threshold:.0%} here, against {lowest:.0%} or more on "
                             "random repeated tokens: this prompt gives them little to copy. Repeat a list "
                             "of unrelated words to see them at work.")
        st.markdown(" ".join(lines))
        if verdict:
            mode = C.auto_mode(lm)
            iv = compute.runs_model(mode, signature(lm))
            copying = compute.copying_table(lm, mode, iv)
            diagonal = compute.diagonal_table(lm, mode, iv)
            st.markdown(copying_words(V.copying_verdict(copying, heads, diagonal), source))
