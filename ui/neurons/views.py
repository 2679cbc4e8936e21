"""Words and layout of the neuron tabs; every interpreting sentence is built from a computed result
and the named thresholds of core.interp.neurons."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.interp.neurons import ablation as K
from core.interp.neurons import scoring as S
from core.interp.neurons.activations import NeuronRecords
from core.interp.neurons.rules import RuleError
from ui.common.interventions import NeuronAblation, is_on, switch_off, switch_on
from ui.common.page import escape_markdown, show_problem
from ui.neurons import charts, compute, frames
from ui.neurons.controls import Choice

VIEWS = ("Neuron", "Explain & score", "Knock-out", "Head circuits", "Composition", "Direct path")
VIEW = "nrn_view"


def neuron_name(layer: int, neuron: int) -> str:
    """"L3 N449": neuron 449 of layer 3 (a dot would read as a decimal number)."""
    return f"L{layer} N{neuron}"


def _tok(decode, i: int) -> str:
    return escape_markdown(frames.show_token(decode(int(i))))


def context_line(lm, rec: NeuronRecords, where, window, value: float) -> str:
    """One context as markdown: the tokens before the activating one, it highlighted, a few after."""
    ids, centre = rec.window_tokens(int(where[0]), int(where[1]))
    decode = lambda i: lm.to_string([i])  # noqa: E731
    parts = []
    for j, t in enumerate(ids):
        if t < 0:
            continue
        word = _tok(decode, t)
        if j == centre:
            parts.append(f":orange-background[**{word}**]")
        elif j > centre:
            parts.append(f":gray[{word}]")
        else:
            parts.append(word)
    return f"`{value:+.2f}` " + " ".join(parts)


def neuron_view(lm, c: Choice, rec: NeuronRecords) -> None:
    n = c.neuron
    decode = lambda i: lm.to_string([i])  # noqa: E731
    with st.container(horizontal=True):
        st.metric("Largest activation", f"{rec.top_values[n, 0]:.3f}")
        st.metric("Smallest", f"{rec.bottom_values[n, 0]:.3f}")
        st.metric("Mean", f"{rec.mean[n]:.3f}", help="The value mean ablation sets it to.")
        st.metric("Positive on", f"{rec.frac_positive[n]:.1%}", help=f"of {rec.n_tokens:,} tokens")
    left, right = st.columns([3, 2])
    with left:
        st.markdown(f"**Where neuron L{c.layer} N{n} fires hardest** (of {rec.n_tokens:,} tokens; the "
                    "highlighted token is where it fires, grey tokens come after and it cannot see them)")
        st.markdown("  \n".join(context_line(lm, rec, w, win, v) for w, win, v in
                                zip(rec.top_where[n][:10], rec.top_window[n][:10], rec.top_values[n][:10],
                                    strict=True)))
        with st.expander("Its most negative activations", icon=":material/south:"):
            st.markdown("  \n".join(context_line(lm, rec, w, win, v) for w, win, v in
                                    zip(rec.bottom_where[n][:10], rec.bottom_window[n][:10],
                                        rec.bottom_values[n][:10], strict=True)))
    with right:
        st.altair_chart(charts.histogram(frames.histogram_frame(rec, n), "Its activation on every token "
                                                                          "(log scale)"))
    rw = compute.reads_writes(lm, c.layer, n)
    st.markdown("**What it reads and writes, from its weights alone** (per unit of activation; the "
                "reading assumes the stream holds only the token itself)")
    cols = st.columns(len(rw) + 1)
    cols[0].caption("Writes: logits it raises")
    cols[0].dataframe(frames.token_table(rw["writes"], decode), hide_index=True)
    cols[1].caption("Writes: logits it lowers")
    cols[1].dataframe(frames.token_table(rw["writes"], decode, "bottom"), hide_index=True)
    for col, name in zip(cols[2:], [k for k in rw if k.startswith("reads")], strict=True):
        col.caption("Reads: tokens that drive it" + (" (gate)" if "gate" in name else
                                                      " (up)" if len(rw) > 2 else ""))
        col.dataframe(frames.token_table(rw[name], decode), hide_index=True)
    if "reads (gate)" in rw:
        gated_view(lm, c)


def gated_view(lm, c: Choice) -> None:
    gu = compute.gate_up(lm, c.layer, c.neuron, c.source, c.key, c.text)
    st.markdown("**Gate and up separately.** This MLP is gated: the neuron's output is "
                "act(gate) x up, so its sign follows the up projection wherever the gate is open.")
    left, right = st.columns([2, 3])
    left.dataframe(frames.quadrant_frame(gu), hide_index=True,
                   column_config={"share of tokens": st.column_config.NumberColumn(format="%.1f%%"),
                                  "mean activation": st.column_config.NumberColumn(format="%+.4f")})
    left.caption(f"act(gate) x up matches the model's own activation within {gu.max_error:.1e}.")
    right.altair_chart(charts.gate_up_scatter(frames.gate_up_points(gu)))


def layer_table_view(lm, c: Choice, rec: NeuronRecords) -> None:
    labels, aurocs = compute.layer_labels(lm, c.layer)
    with st.expander(f"Every neuron of layer {c.layer}: its range and the label that fits it best",
                     icon=":material/table:"):
        st.dataframe(frames.layer_table(rec, labels, aurocs), hide_index=True, height=320,
                     column_config={"positive": st.column_config.NumberColumn(format="%.2f"),
                                    "AUROC": st.column_config.NumberColumn(format="%.3f")})
        st.caption("AUROC of the best single label on generated sentences; type a neuron's number above "
                   "to look at it.")


VERDICT_WORDS = {
    "explains": "**explains** when the neuron fires",
    "partly": "explains it **partly**",
    "no_better_than_chance": "says **nothing** about it (no better than a random rule)",
    "opposite": "picks out tokens where it fires **less** than elsewhere: try `not` in front",
    "unscorable": "cannot be scored",
}


def score_sentence(sc: S.RuleScore) -> str:
    if sc.verdict == "unscorable":
        return (f"The rule holds on {sc.n_match:,} of the tokens, which is too few or too many to score "
                f"(it must hold on at least {S.MIN_MATCHES} and fail on at least {S.MIN_MATCHES}).")
    return (f"On fresh sentences, the rule *{escape_markdown(sc.rule)}* {VERDICT_WORDS[sc.verdict]}: AUROC "
            f"**{sc.auroc:.3f}** (a random rule holding on as many tokens scores {sc.baseline_auroc:.3f}; "
            f"{S.GOOD_AUROC:g} or more counts as an explanation), correlation {sc.correlation:+.3f}. The "
            f"neuron averages {sc.mean_in:+.3f} where the rule holds and {sc.mean_out:+.3f} elsewhere.")


def _use_rule(rule: str) -> None:
    st.session_state["nrn_rule"] = rule


def explain_view(lm, c: Choice) -> None:
    st.markdown("Write one line saying when the neuron fires, over the bundled world's labels. It is "
                "scored on fresh generated sentences against the neuron's real activations.")
    sugg = compute.suggestions(lm, c.layer, c.neuron)
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption("Best single labels on other sentences:")
        for i, s in enumerate(sugg):
            st.button(f"{s.rule} ({s.auroc:.2f})", key=f"nrn_sugg_{i}", on_click=_use_rule, args=(s.rule,),
                      type="tertiary")
    rule = st.text_input("Rule", key="nrn_rule", bind="query-params", max_chars=200,
                         placeholder="e.g. colour or place; name and not sentence start; after article")
    with st.expander("The rule language", icon=":material/help:"):
        from core.interp.neurons import labels as Lb

        st.markdown("Labels: " + ", ".join(f"`{x}`" for x in Lb.LABELS) + ". Combine them with `and`, "
                    "`or`, `not` and parentheses; `after X` holds on the token right after one where X "
                    "holds; `word red` matches one exact word.")
    try:
        sc = compute.score(lm, c.layer, c.neuron, rule or "")
    except RuleError as err:
        show_problem(str(err))
        return
    st.markdown(score_sentence(sc))
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("AUROC", "-" if np.isnan(sc.auroc) else f"{sc.auroc:.3f}")
    c2.metric("Correlation", "-" if np.isnan(sc.correlation) else f"{sc.correlation:+.3f}")
    c3.metric("Random rule, same size", "-" if np.isnan(sc.baseline_auroc) else f"{sc.baseline_auroc:.3f}")
    c4.metric("Holds on", f"{sc.coverage:.1%}")
    if sc.verdict != "unscorable":
        acts, mask = compute.scored_activations(lm, c.layer, c.neuron, rule)
        st.altair_chart(charts.overlap(frames.overlap_frame(acts, mask)))


def _families(ko: K.KnockOut, families: tuple[str, ...]) -> str:
    return ", ".join(K.FAMILY_WORDS[f] for f in families)


def _most(ko: K.KnockOut, families: tuple[str, ...]) -> str:
    """ "repeated words: +0.0312": the family of `families` whose loss moved most, and by how much."""
    i = max((ko.families.index(f) for f in families), key=lambda j: abs(ko.delta[j]))
    return f"{K.FAMILY_WORDS[ko.families[i]]}: {ko.delta[i]:+.4f}"


def knockout_sentence(ko: K.KnockOut) -> str:
    """What the knock-out did, family by family, from the signed loss changes (either way)."""
    head = f"Setting neuron L{ko.layer} N{ko.neuron} to {ko.value:.3g}"
    if ko.matters:
        words = (f"{head} raises the loss by at least {K.MATTERS:g} nats per token on: "
                 f"**{_families(ko, ko.matters)}** (most on {_most(ko, ko.matters)}).")
        if ko.helps:
            words += (f" It *lowers* the loss by at least {K.MATTERS:g} on: **{_families(ko, ko.helps)}** "
                      f"(most on {_most(ko, ko.helps)}): there the model does better without it.")
        return words
    if ko.helps:
        return (f"{head} raises the loss by less than {K.MATTERS:g} nats per token on every family, and "
                f"*lowers* it by at least {K.MATTERS:g} on: **{_families(ko, ko.helps)}** (most on "
                f"{_most(ko, ko.helps)}): no family needs this neuron, and on these the model does better "
                "without it.")
    i = ko.largest
    way = "a rise" if ko.delta[i] > 0 else "a drop" if ko.delta[i] < 0 else "no change"
    return (f"{head} changes the loss by less than {K.MATTERS:g} nats per token on every family, either "
            f"way (largest change {ko.delta[i]:+.4f}, {way}, on {K.FAMILY_WORDS[ko.families[i]]}): the "
            "model does not depend on this neuron alone.")


def knockout_view(lm, c: Choice, rec: NeuronRecords) -> None:
    mode = st.segmented_control("Ablation", K.MODES, default="zero", key="nrn_ko_mode", bind="query-params",
                                format_func={"zero": "zero", "mean": "mean (its corpus average)"}.get)
    mode = mode or "zero"
    mean = float(rec.mean[c.neuron])
    ko = compute.knock_out(lm, c.layer, c.neuron, mode, mean if mode == "mean" else 0.0)
    st.altair_chart(charts.knockout(frames.knockout_frame(ko)))
    st.markdown(knockout_sentence(ko))
    name = f"neuron L{c.layer} N{c.neuron} ({mode} ablation)"
    on = is_on(name)
    keep = st.toggle("Keep this knock-out on for the other pages", value=on,
                     key=f"nrn_keep_{c.layer}_{c.neuron}_{mode}",
                     help="The Residual stream page then reads the model without this neuron.")
    if keep and not on:
        switch_on(NeuronAblation(name=name, model_spec=lm.spec, layer=c.layer, neuron=c.neuron,
                                 value=ko.value, mode=mode, source="MLP neurons"))
    elif not keep and on:
        switch_off(name)
