"""Words and layout of the SAE page: the headline, the ground-truth chart and table, "what to notice"
(every sentence worded from the verdicts in core.interp.sae.verdict), the metrics, the sweep."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.interp.sae.verdict import (
    FOUND_AUROC,
    NAME_ATTRIBUTES,
    NARROW_RECALL,
    POOR_PRECISION,
    Findings,
    SweepVerdict,
)
from core.models.hook_names import hook_label
from ui.common.page import escape_markdown
from ui.sae.charts import ground_truth_chart
from ui.sae.frames import matches_frame


def _names(matches, *, precision: bool = False) -> str:
    parts = [f"{m.attribute} ({m.auroc:.3f}" + (f", precision {m.precision:.0%}" if precision else "") + ")"
             for m in matches]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def where(run) -> str:
    cfg = run.sae.cfg
    return (f"`{cfg.hook_name}` ({hook_label(cfg.hook_name)}), {cfg.d_sae:,} features "
            f"({cfg.expansion:g}x)")


def headline(run) -> None:
    """The main result: how many attributes it found, the chart and the table beside it."""
    f = run.report.findings
    st.subheader(f"It found {f.n_found} of {f.n_total} known attributes")
    made = run.experiment.label() if run.experiment else f"Uploaded SAE ({escape_markdown(run.source)})"
    st.caption(f"{made} · {where(run)}. For each attribute: the single feature that best separates its "
               f"tokens from all others on held-out text (AUROC); found at AUROC {FOUND_AUROC:g} or more.")
    frame = matches_frame(run.report.matches)
    chart, table = st.tabs(["Chart", "Table: precision and recall"])
    chart.altair_chart(ground_truth_chart(frame), width="stretch")
    table.dataframe(
        frame[["attribute", "status", "feature", "auroc", "precision", "recall"]], hide_index=True,
        height=35 * len(frame) + 38, width="stretch", column_config={
            "attribute": st.column_config.TextColumn(width="medium"),
            "feature": st.column_config.NumberColumn("best feature", format="%d"),
            "auroc": st.column_config.NumberColumn("AUROC", format="%.3f"),
            "precision": st.column_config.NumberColumn(format="%.2f"),
            "recall": st.column_config.NumberColumn(format="%.2f")})


def notice_lines(f: Findings, *, bundled: bool) -> list[str]:
    """The "what to notice" sentences, each computed from the findings."""
    lines = []
    if f.found:
        lines.append(f"This SAE gives {f.n_found} of the {f.n_present} word lists that occur in the held-out "
                     f"text a feature of its own (AUROC {FOUND_AUROC:g} or more): {_names(f.found)}.")
    else:
        best = max(f.near_misses + f.missed, key=lambda m: m.auroc, default=None)
        lines.append(f"This SAE gives none of the {f.n_present} word lists a feature of its own" +
                     (f"; the closest is {_names([best])}." if best else "."))
    if f.near_misses:
        lines.append(f"Just under the line: {_names(f.near_misses)}. Another seed or sparsity setting may "
                     f"tip {'it' if len(f.near_misses) == 1 else 'them'} over.")
    if f.hardest:
        lines.append(f"Hardest here: {_names(f.hardest)}.")
    for m in f.narrow:
        lines.append(f"The best feature for {m.attribute} is narrow: it fires on only {m.recall:.0%} of "
                     f"their tokens (precision {m.precision:.0%}), so the SAE spends its features on single "
                     f"words or small groups of the list rather than on the list as a whole.")
    if bundled and f.names_hardest and any(m.attribute in NAME_ATTRIBUTES for m in f.narrow):
        lines.append("(In this world a name's gender shows only in the pronouns that follow it, so "
                     "nothing in a name's own token marks it as female or male.)")
    if f.imprecise:
        lines.append(f"Careful with {_names(f.imprecise, precision=True)}: under {POOR_PRECISION:.0%} of the "
                     f"tokens the feature fires on belong to the list. AUROC only asks that the list's "
                     f"tokens score higher than the rest, so a dense feature can pass it and still be a "
                     f"poor detector.")
    if f.absent:
        verb = "has" if len(f.absent) == 1 else "have"
        lines.append(f"{len(f.absent)} of the lists {verb} no single-token words for this model "
                     f"({', '.join(m.attribute for m in f.absent)}): nothing can be said about them.")
    return lines


def sweep_lines(v: SweepVerdict, x_title: str) -> list[str]:
    """What the sweep shows, from its verdict."""
    lo, hi = v.found_range
    if v.trend == "too few SAEs":
        return ["Run the sweep to see how the number found changes with sparsity."]
    ends = (f"the sparsest SAE (L0 {v.sparsest[0]:.1f}) found {v.sparsest[1]}, the densest "
            f"(L0 {v.densest[0]:.1f}) found {v.densest[1]}")
    if v.trend == "no clear trend":
        if lo == hi:
            return [f"Every SAE of the sweep found {lo}: here sparsity does not change what is found."]
        return [f"No clear trend across {x_title}: between {lo} and {hi} found; {ends}."]
    if v.trend == "sparser finds fewer":
        lines = [f"The sparser the SAE, the fewer attributes it finds: {ends}.", _splitting(v)]
        if v.densest_imprecise:
            lines.append(f"But {v.densest_imprecise} of the densest SAE's {v.densest[1]} rest on a feature "
                         f"whose precision is under {POOR_PRECISION:.0%}: a feature that fires on many "
                         f"tokens can pass the AUROC line and still be a poor detector.")
        return lines
    return [f"The sparser the SAE, the more attributes it finds: {ends}.", _spreading(v)]


def _lists(n: int) -> str:
    return f"{n} list" + ("" if n == 1 else "s")


def _splitting(v: SweepVerdict) -> str:
    """Feature splitting, as a hypothesis checked on the sparsest SAE's missed lists."""
    narrow = (f"a narrow best feature (it fires on under {NARROW_RECALL:.0%} of the list's tokens, and "
              "mostly on them)")
    idea = ("A hypothesis to check, feature splitting: allowed only a few active features per token, an "
            "SAE tends to give frequent words features of their own rather than one broad list feature. ")
    if v.sparsest_missed == 0:
        return idea + "It would show as narrow best features on the lists the sparsest SAE misses."
    if v.sparsest_narrow:
        verb = "has" if v.sparsest_narrow == 1 else "have"
        return idea + (f"Of the {_lists(v.sparsest_missed)} the sparsest SAE misses, {v.sparsest_narrow} "
                       f"{verb} {narrow}, which is what it predicts; the feature browser shows which words "
                       "those features fire on.")
    return idea + (f"It predicts {narrow} on the lists the sparsest SAE misses, but none of its "
                   f"{_lists(v.sparsest_missed)} missed has one, so this sweep does not point to it.")


def _spreading(v: SweepVerdict) -> str:
    """A dense SAE spreading a list over weak features, as a hypothesis checked on the densest SAE."""
    broad = f"a best feature whose precision is under {POOR_PRECISION:.0%} (it fires mostly on other tokens)"
    idea = ("A hypothesis to check: a denser SAE spreads a list over several weak features that fire on "
            "many tokens, so no single one separates it. ")
    if v.densest_missed == 0:
        return idea + "It would show as broad best features on the lists the densest SAE misses."
    if v.densest_broad:
        verb = "has" if v.densest_broad == 1 else "have"
        return idea + (f"Of the {_lists(v.densest_missed)} the densest SAE misses, {v.densest_broad} {verb} "
                       f"{broad}, which fits it; the feature browser shows whether a list is split over "
                       "several such features.")
    return idea + (f"It predicts {broad} on the lists the densest SAE misses, but none of its "
                   f"{_lists(v.densest_missed)} missed has one, so this sweep does not point to it.")


def what_to_notice(f: Findings, *, bundled: bool) -> None:
    lines = notice_lines(f, bundled=bundled)
    st.markdown("**What to notice.** " + " ".join(lines))
    if not bundled:
        st.caption("The attributes are the bundled world's word lists, looked up in this model's "
                   "vocabulary; only words that are a single token count.")


def metrics(run) -> None:
    r, s = run.report.recon, run.report.splice
    with st.container(horizontal=True):
        st.metric("Explained variance", f"{r.explained_variance:.3f}", help="1 - MSE / variance, held-out")
        st.metric("L0", f"{r.l0:.1f}", help="Active features per token, held-out")
        st.metric("Dead features", f"{r.dead_fraction:.1%}", help="Never fire on the held-out text")
        st.metric("MSE", f"{r.mse:.3g}")
        if s is not None:
            st.metric("CE clean / spliced / zeroed", f"{s.clean:.2f} / {s.spliced:.2f} / {s.zero:.2f}",
                      help="Next-token cross-entropy (nats) with the real activations, the SAE's "
                           "reconstruction, and zeros")
            st.metric("CE loss recovered", f"{s.recovered:.1%}", help="(zeroed - spliced) / (zeroed - clean)")


def answer_key_table(frame: pd.DataFrame) -> None:
    st.dataframe(frame, hide_index=True, width="stretch", height=35 * len(frame) + 38, column_config={
        "attribute": st.column_config.TextColumn(width="small"),
        "words": st.column_config.TextColumn(width="large"),
        "single tokens": st.column_config.NumberColumn(width="small")})
