"""The Activation patching page on a model whose weights are elsewhere (a model on NDIF, through
nnsight): every sweep is attribution patching in one request plus at most
compute.REMOTE_BUDGET exact patched runs, one request each, for the components the estimate ranks
first (core.interp.patching.reads). The heatmap draws the exact values it has; the cells it did not
patch are grey, with their estimate on hover. What needs the model in this process says so, with
the reason.
"""

from __future__ import annotations

import streamlit as st

from core.interp.patching import verdicts as V
from core.interp.patching.attribution import FAIL_GAP
from core.interp.patching.reads import LOCAL_ONLY, attribution_result
from ui.common.interventions import active, signature
from ui.common.remote import ask
from ui.patching import charts, compute, views
from ui.patching import frames as F

WHY_LOCAL = {
    "head_parts": "A head's queries, keys and values live inside the attention function (after the "
                  "rotary embedding), where nnsight has no hook point to read or write, so this sweep needs "
                  "the model in this process. The head outputs (Heads, Heads by position) work here.",
    "Path patching": "Path patching recomputes every receiver head's queries, keys and values from one "
                     "sender's output, with everything else frozen: for every sender and receiver pair, "
                     f"far beyond the {compute.REMOTE_BUDGET} patched runs a sweep may send to a model "
                     "elsewhere, and it reaches inside the attention function, where nnsight has no hook "
                     "point.",
    "Circuit": "Circuit discovery scores every edge between components from gradients at their inputs "
               "(EAP, EAP-IG) and prunes edges one patched run at a time (ACDC): thousands of edges, which "
               "need the model in this process.",
    "Cross-check": "The cross-check compares exact patching with path patching and a discovered circuit; "
                   "the last two need the model in this process (see their tabs).",
}
NO_INTERVENTIONS = (
    "On a model elsewhere a sweep starts from attribution patching, which nnsight runs in one request "
    "with no other writes, so it cannot run under the interventions switched on for this model. Switch them "
    "off (in the note above) to patch this model; the pair's logit differences above do include them.")


def local_only(what: str) -> None:
    st.info(WHY_LOCAL[what], icon=":material/cloud_off:")


def blocked_by_interventions(lm) -> bool:
    """True (after saying why) when interventions are on for a model that has no engine here."""
    if not active(lm):
        return False
    st.info(NO_INTERVENTIONS, icon=":material/cloud_off:")
    return True


def heads_sweep(lm, behaviour: str, custom: tuple, direction: str):
    """The "heads" sweep for the prediction step, or None after a failed request."""
    got = ask(lm, "Patching every head",
              lambda: compute.budget_sweep(lm, behaviour, custom, "heads", direction, signature(lm)),
              key="patch_heads")
    return None if got is None else got.result


def budget_caption(bs) -> None:
    r = bs.result
    grey = bs.n_cells - bs.n_runs - bs.n_noops
    ran = (f"the {bs.n_runs} that attribution patching ranks highest (a sweep on a model elsewhere sends at "
           f"most {bs.budget})" if grey else
           f"every cell that can change anything (within the {bs.budget} a sweep on a model elsewhere "
           "may send)")
    st.caption(f"{bs.n_cells:,} cells: {bs.n_runs} patched exactly, one request each: {ran}; {bs.n_noops} "
               "need no run (before the first position where the prompts differ, both runs are the same)"
               + (f"; {grey} grey cells were not patched (hover for their estimate)" if grey else "")
               + f". {r.seconds:.1f} s in all.")


def sweeps_tab(lm, behaviour: str, custom: tuple, direction: str) -> None:
    kind = views.sweep_control()
    if kind in LOCAL_ONLY:
        local_only(kind)
        return
    bs = ask(lm, f"Patching ({views.SWEEP_LABELS[kind]}), one request per patch",
             lambda: compute.budget_sweep(lm, behaviour, custom, kind, direction, signature(lm)),
             key="patch_budget")
    if bs is None:
        return
    views.sweep_chart(F.budget_frame(bs), kind, direction)
    budget_caption(bs)
    views.sweep_notice(lm, kind, bs.result, direction)


def attribution_tab(lm, behaviour: str, custom: tuple, direction: str) -> None:
    bs = ask(lm, "Patching every head at every position, one request per patch",
             lambda: compute.budget_sweep(lm, behaviour, custom, "heads_by_pos", direction, signature(lm)),
             key="patch_budget_atp")
    if bs is None:
        return
    a = attribution_result(bs, lambda panel, row, col: views.component("heads_by_pos", panel, row, col))
    if not len(a.names):
        st.markdown("Every head-and-position patch here changes nothing (the prompts differ only at the last "
                    "position), so there is nothing to compare.")
        return
    st.altair_chart(charts.attribution_scatter(F.attribution_frame(a, "atp"), "AtP"), width="content")
    st.caption(f"The {len(a.names)} head-and-position patches run exactly (the ones AtP ranks highest, at "
               f"most {bs.budget}) against their AtP estimate, from one backward pass in the same request as "
               "the forward passes. On the dashed line the estimate is exact. AtP*'s QK fix needs each "
               "head's queries and keys, inside the attention function, so it runs on local models only.")
    v = V.attribution_verdict(a, "atp")
    tracks = ("(it tracks them)." if v.tracks
              else f"(under {V.GOOD_CORRELATION}: it does not track them well).")
    lines = [f"**What to notice.** Over these patches the estimate correlates {v.correlation_atp:.2f} with "
             f"the exact values {tracks}"]
    if v.failures:
        lines.append(f"It fails (off by more than {FAIL_GAP:.0%}) at: " + "; ".join(
            f"{views.escape_markdown(n)} (exact {x:+.2f}, estimate {y:+.2f})" for n, x, y in v.failures[:6])
            + (f", and {len(v.failures) - 6} more" if len(v.failures) > 6 else "") + ".")
    else:
        lines.append(f"No patch here is off by more than {FAIL_GAP:.0%}.")
    st.markdown(" ".join(lines))
