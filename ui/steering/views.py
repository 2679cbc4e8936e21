"""The steering page's pictures and text: continuations side by side, effect frames, ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.interp.steering.effect import ConceptTargets, EffectCurve, LayerSweep
from ui.common.page import escape_markdown
from ui.steering.charts import METRIC_ORDER


def md_escape(text: str) -> str:
    """Text shown literally in st.markdown (ui.common.page.escape_markdown), line breaks kept."""
    return escape_markdown(text).replace("\n", "  \n")


def highlighted(lm, ids: tuple[int, ...], targets: ConceptTargets) -> tuple[str, int, int]:
    """Markdown of the new tokens with + words on green and - words on red (and the end-of-text
    token as a grey mark), and the two counts."""
    plus, minus, eos = set(targets.plus_ids), set(targets.minus_ids), lm.tokenizer.eos_token_id
    parts, run, n_plus, n_minus = [], [], 0, 0
    for i in (*ids, None):  # None flushes the last run
        if i is not None and i not in plus and i not in minus and i != eos:
            run.append(i)
            continue
        if run:
            parts.append(md_escape(lm.tokenizer.decode(run)))
            run = []
        if i == eos and i is not None:
            parts.append(" :gray[‹end of text›] ")
        elif i is not None:
            colour = "green" if i in plus else "red"
            n_plus, n_minus = n_plus + (i in plus), n_minus + (i in minus)
            parts.append(f":{colour}-background[{md_escape(lm.tokenizer.decode([i]))}]")
    return "".join(parts), n_plus, n_minus


def continuation_card(lm, title: str, prompt_text: str, cont, targets: ConceptTargets) -> None:
    with st.container(border=True):
        st.markdown(title)
        body, n_plus, n_minus = highlighted(lm, cont.token_ids, targets)
        st.markdown(f":gray[{md_escape(prompt_text)}] {body}")
        st.caption(f"{md_escape(targets.plus_name)}: **{n_plus}** · {md_escape(targets.minus_name)}: "
                   f"**{n_minus}** · "
                   f"perplexity under the unsteered model: **{cont.perplexity:.1f}**")


def word_legend(targets: ConceptTargets) -> None:
    words = lambda ws: md_escape(", ".join(w.strip() for w in ws[:8]) + (", ..." if len(ws) > 8 else ""))  # noqa: E731
    st.caption(f"Green: {md_escape(targets.plus_name)} ({words(targets.plus_words)}); "
               f"red: {md_escape(targets.minus_name)} ({words(targets.minus_words)}).")


def curve_frame(curves: list[EffectCurve], targets: ConceptTargets) -> pd.DataFrame:
    """Long frame (control, coefficient, metric, value) for ui.steering.charts.effect_chart."""
    rows = []
    for c in curves:
        for metric, values in zip(METRIC_ORDER, (c.p_plus, c.p_minus, c.logit_diff, c.perplexity),
                                  strict=True):
            rows += [{"control": c.control, "coefficient": float(x), "metric": metric, "value": float(v)}
                     for x, v in zip(c.coefficients, values, strict=True) if np.isfinite(v)]
    frame = pd.DataFrame(rows)
    names = {"P(+ words)": f"P({targets.plus_name})", "P(- words)": f"P({targets.minus_name})"}
    frame["metric"] = frame["metric"].replace(names)
    return frame


def metric_order(targets: ConceptTargets) -> list[str]:
    return [f"P({targets.plus_name})", f"P({targets.minus_name})", *METRIC_ORDER[2:]]


def sweep_frame(sweep: LayerSweep) -> pd.DataFrame:
    """layer, coefficient, effect = change of P(+) - P(-) from the unsteered model, and the raw values."""
    zero = int(np.argmin(np.abs(sweep.coefficients)))
    margin = sweep.p_plus - sweep.p_minus  # [layer, n_coef]
    rows = []
    for li, layer in enumerate(sweep.layers):
        for ci, coef in enumerate(sweep.coefficients):
            rows.append({"layer": int(layer), "coefficient": float(coef),
                         "effect": float(margin[li, ci] - margin[li, zero]),
                         "P(+)": float(sweep.p_plus[li, ci]), "P(-)": float(sweep.p_minus[li, ci]),
                         "vector norm": float(sweep.norms[li])})
    return pd.DataFrame(rows)


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def effect_metrics(effect: dict, targets: ConceptTargets, coefficient: float) -> None:
    """Four numbers at the current coefficient, each against the unsteered model."""
    v, r = effect["vector"], effect["random"]
    cols = st.columns(4)
    cols[0].metric(f"P({targets.plus_name}) next", _pct(v["p_plus"][1]),
                   f"{100 * (v['p_plus'][1] - v['p_plus'][0]):+.1f} pts", border=True,
                   help="Probability mass on the + words for the next token, averaged over the "
                        "evaluation prompts; the change is against the unsteered model.")
    cols[1].metric(f"P({targets.minus_name}) next", _pct(v["p_minus"][1]),
                   f"{100 * (v['p_minus'][1] - v['p_minus'][0]):+.1f} pts", border=True,
                   delta_color="inverse")
    cols[2].metric("logit difference (+ minus -)", f"{v['logit_diff'][1]:+.2f}",
                   f"{v['logit_diff'][1] - v['logit_diff'][0]:+.2f}", border=True)
    cols[3].metric(f"random push: P({targets.plus_name})", _pct(r["p_plus"][1]),
                   f"{100 * (r['p_plus'][1] - r['p_plus'][0]):+.1f} pts", border=True,
                   delta_color="off",
                   help="The same push in a random direction of the same norm: the control.")


def ground_truth(effect: dict, targets: ConceptTargets, concept: str, layer: int,
                 coefficient: float) -> None:
    """On the bundled model: did steering toward + raise the + words and lower the - words?"""
    v, r = effect["vector"], effect["random"]
    (p0, p1), (m0, m1) = v["p_plus"], v["p_minus"]
    example = targets.prompts[0]
    where = (f"measured at the end of {len(targets.prompts)} held-out prompts such as "
             f"“{example}”, where the next word is a {concept} word")
    if coefficient == 0:
        st.info(f"Coefficient 0 adds nothing: the numbers equal the unsteered model's "
                f"(P({targets.plus_name}) {_pct(p0)}, P({targets.minus_name}) {_pct(m0)}). "
                "Move the slider.", icon=":material/info:")
        return
    toward = targets.plus_name if coefficient > 0 else targets.minus_name
    up_ok = (p1 > p0) if coefficient > 0 else (p1 < p0)
    down_ok = (m1 < m0) if coefficient > 0 else (m1 > m0)
    text = (f"**Expected:** steering toward {toward} raises those words and lowers the others. "
            f"**Found** (layer {layer}, coefficient {coefficient:+.1f}, {where}): "
            f"P({targets.plus_name}) {_pct(p0)} → **{_pct(p1)}**, "
            f"P({targets.minus_name}) {_pct(m0)} → **{_pct(m1)}**. "
            f"A random vector of the same norm: {_pct(r['p_plus'][0])} → {_pct(r['p_plus'][1])} and "
            f"{_pct(r['p_minus'][0])} → {_pct(r['p_minus'][1])}.")
    if up_ok and down_ok:
        st.success(text, icon=":material/check_circle:")
    else:
        st.warning(text + " Steering did not move both the way it should here: try another layer "
                          "or a coefficient of the other size.", icon=":material/warning:")
