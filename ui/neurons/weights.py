"""Words and layout of the weight tabs: head circuits by SVD, composition, and the direct path."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.interp.weights import composition as C
from core.interp.weights.direct_path import MOSTLY_ITSELF
from core.interp.weights.svd import KINDS, ONE_JOB_SHARE
from ui.attention.compute import listed_heads
from ui.common.page import escape_markdown
from ui.neurons import charts, compute, frames

MAX_ALL_HEADS = 48  # up to this many earlier heads, the composition map shows them all at once


def svd_view(lm) -> None:
    c1, c2, c3 = st.columns(3)
    layer = c1.selectbox("Layer", range(lm.cfg.n_layers), index=lm.cfg.n_layers - 1, key="nrn_svd_layer",
                         bind="query-params")
    head = c2.selectbox("Head", range(lm.cfg.n_heads), index=min(1, lm.cfg.n_heads - 1), key="nrn_svd_head",
                        bind="query-params")
    kind = c3.segmented_control("Circuit", KINDS, default="OV", key="nrn_svd_kind",
                                bind="query-params") or "OV"
    r = compute.head_svd(lm, layer, head, kind)
    decode = lambda i: lm.to_string([i])  # noqa: E731
    left, right = st.columns([1, 1], vertical_alignment="center")
    left.altair_chart(charts.spectrum(frames.spectrum_frame(r), f"{kind} circuit of head {layer}.{head}"))
    job = "one job dominates" if r.top_share >= ONE_JOB_SHARE else "it spreads over several directions"
    right.markdown(f"Its first direction holds **{r.top_share:.0%}** of the circuit (squared singular "
                   f"values): {job}.")
    st.dataframe(frames.directions_frame(r, decode), hide_index=True)
    st.caption("Each row is one singular direction, strongest first: " + (
        "tokens whose embedding it reads along it, and the tokens whose logits it then raises."
        if kind == "OV" else "query tokens along it, and the key tokens such a query looks for."))


def composition_view(lm) -> None:
    comp, base = compute.composition(lm)
    L, H = lm.cfg.n_layers, lm.cfg.n_heads
    if L < 2:
        st.info("This model has one layer: there is no later head to compose with.")
        return
    c1, c2, c3 = st.columns(3)
    mode = c1.segmented_control("Composition", C.MODES, default="K", key="nrn_comp_mode",
                                bind="query-params") or "K"
    target = c2.selectbox("Later layer", range(1, L), index=L - 2, key="nrn_comp_target", bind="query-params")
    sources = list(range(target))
    if target * H > MAX_ALL_HEADS:
        src = c3.selectbox("Earlier layer", sources, index=len(sources) - 1, key="nrn_comp_source")
        sources = [src]
    frame = frames.composition_frame(comp, base, mode)
    frame = frame[(frame["l2"] == target) & frame["l1"].isin(sources)]
    st.altair_chart(charts.composition_heatmap(frame, mode, base.mean[mode]))
    st.caption(f"Shuffled-weight baseline for {mode}-composition: {base.mean[mode]:.3f} ± "
               f"{base.std[mode]:.3f} "
               f"(mean ± standard deviation over every pair, weights of each head shuffled). A pair stands "
               f"out at {C.STANDOUT_Z:g} standard deviations above it.")
    top = C.standouts(comp, base, limit=8)
    if top:
        st.markdown("**Strongest pairs above the baseline, any mode:** " + "; ".join(
            f"{s.h1[0]}.{s.h1[1]} → {s.h2[0]}.{s.h2[1]} ({s.mode}, {s.score:.2f}, z {s.z:.0f})" for s in top))
    listed = listed_heads(lm)
    if listed.get("previous_token") and listed.get("induction"):
        check = C.check_pairs(comp, base, listed["previous_token"], listed["induction"], "K")
        st.markdown(pair_sentence(check))


def pair_sentence(check: C.PairCheck) -> str:
    if check.verdict == "no_pairs":
        return "The report's previous-token heads are not in an earlier layer than its induction heads."
    pairs = "; ".join(
        f"{s[0]}.{s[1]} → {t[0]}.{t[1]}: K {x:.3f} (z {z:.0f}), Q {o['Q']:.3f}, V {o['V']:.3f}"
        for (s, t), x, z, o in zip(check.pairs, check.scores, check.z, check.other_modes, strict=True))
    head = {"stands_out": "**The previous-token → induction K-composition stands out**",
            "partly": "**The previous-token → induction K-composition stands out for some pairs only**",
            "does_not_stand_out": "**The previous-token → induction K-composition does not stand out**"}
    return (f"{head[check.verdict]} (the evaluation report's heads; standing out means at least "
            f"{C.STANDOUT_Z:g} baseline standard deviations and above the same pair's Q and V): {pairs}. "
            f"From the same previous-token head into the other later heads, K-composition averages "
            f"{check.elsewhere:.3f}.")


def direct_view(lm) -> None:
    dp, bigram = compute.direct(lm)
    decode = lambda i: lm.to_string([i])  # noqa: E731
    with st.container(horizontal=True):
        st.metric("Predicts the token itself", f"{dp.self_top1:.0%}",
                  help="Share of tokens whose direct-path top prediction is the token itself")
        st.metric("Median rank of the token in its own row", f"{dp.self_rank_median:.0f}")
        if bigram.n_sources:
            st.metric("Top-1 = the corpus's commonest next token", f"{bigram.top1_agreement:.0%}",
                      help=f"over {bigram.n_sources} tokens that occur often enough")
            st.metric("The whole model, same test", f"{bigram.model_top1_agreement:.0%}",
                      help="Given only the beginning-of-text token and the token")
    tied = ("The embedding and unembedding are tied (one matrix), " if dp.tied
            else "The embedding and unembedding are separate matrices, ")
    st.markdown(tied + (f"and the direct path predicts the current token itself for **{dp.self_top1:.0%}** "
                        f"of the {len(dp.ids):,} tokens measured: without its layers, this model would "
                        "mostly repeat what it reads." if dp.self_top1 >= MOSTLY_ITSELF else
                        f"and the direct path predicts the current token itself for only {dp.self_top1:.0%} "
                        f"of the {len(dp.ids):,} tokens measured."))
    if bigram.n_sources:
        st.markdown(f"Against the text's bigram counts: the direct path's top prediction is the commonest "
                    f"next token for {bigram.top1_agreement:.0%} of {bigram.n_sources} tokens (the commonest "
                    f"next token sits at median rank {bigram.median_rank:.0f} in its row); the whole model, "
                    f"given the token alone, gets {bigram.model_top1_agreement:.0%}.")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(dp.ids), size=min(12, len(dp.ids)), replace=False)
    rows = [{"token": frames.show_token(decode(int(dp.ids[i]))),
             "direct path predicts": ", ".join(f"{frames.show_token(decode(int(t)))} {p:.0%}"
                                               for t, p in zip(dp.top_ids[i], dp.top_probs[i], strict=True))}
            for i in sorted(pick)]
    st.dataframe(rows, hide_index=True)
    st.caption(escape_markdown("norm(W_E[t]) @ W_U for sample tokens: the next-token guess with no layer "
                               "at all."))
