"""The steering page's pictures and text: continuations side by side, the numbers at the current
coefficient, the verdict in words (from core.interp.steering.verdict), and the effect frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.interp.steering import verdict as V
from core.interp.steering.effect import EffectCurve, LayerSweep, PointEffect
from core.interp.steering.targets import ConceptTargets
from core.interp.steering.vectors import DIRECTION_SCALE
from core.models.hook_names import layer_words, short_label  # layer_words: the page calls views.layer_words
from ui.common.page import escape_markdown
from ui.steering.charts import METRIC_ORDER


def md_escape(text: str) -> str:
    """Text shown literally in st.markdown (ui.common.page.escape_markdown), line breaks kept."""
    return escape_markdown(text).replace("\n", "  \n")


def vector_words(sv, source) -> str:
    """Where the vector comes from, in words."""
    if source.direction is not None:
        return (f"the direction handed over from the {md_escape(source.direction.source)} page, "
                f"rescaled to {DIRECTION_SCALE:.0%} of the stream's typical size")
    pairs = f" of {sv.n_pairs} pair{'s' * (sv.n_pairs != 1)}" if sv.n_pairs else ""
    return f"{sv.method}{pairs}, {md_escape(sv.label)}"


def sweep_label(layer: int) -> str:
    """A layer's row label in the layer x coefficient map: "embed" or "2"."""
    return short_label(layer)


def side_words(targets: ConceptTargets, plus: bool, n: int = 3) -> str:
    """The pushed-toward side in words: "positive words" or, for typed pairs, "words like love"."""
    name, words = ((targets.plus_name, targets.plus_words) if plus
                   else (targets.minus_name, targets.minus_words))
    if name in ("+ words", "- words"):
        return "words like " + ", ".join(w.strip() for w in words[:n])
    return name


def question_fields(targets: ConceptTargets, coefficient: float, where: str) -> dict:
    """The prediction question's blanks, filled from this experiment."""
    return {"coefficient": f"{coefficient:+.1f}", "where": where,
            "words": side_words(targets, coefficient >= 0)}


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


def continuation_card(lm, title: str, prompt_text: str, ids: tuple[int, ...], perplexity: float,
                      targets: ConceptTargets) -> None:
    with st.container(border=True):
        st.markdown(title)
        body, n_plus, n_minus = highlighted(lm, ids, targets)
        st.markdown(f":gray[{md_escape(prompt_text)}] {body}")
        st.caption(f"{md_escape(targets.plus_name)}: **{n_plus}** · {md_escape(targets.minus_name)}: "
                   f"**{n_minus}** · perplexity under the unsteered model: **{perplexity:.1f}**")


def same_seed_note(outcome: V.SteeringOutcome) -> str:
    """How the two texts were written, and where they part (so the push is not sampling luck)."""
    t = outcome.texts
    how = ("Both texts are greedy (temperature 0): each step takes the most likely token."
           if t.greedy else
           f"Both texts use seed {t.seeds[0]} and the same random numbers at every step, so they agree "
           "token for token until the push changes which token wins.")
    first = t.first_difference
    if not t.plain[0] and not t.steered[0]:
        return "Neither text has a new token: the prompt fills the model's context window."
    where = ("They are identical: this push never changed the winning token." if first is None
             else f"They part at new token {first + 1}.")
    return f"{how} {where}"


def word_legend(targets: ConceptTargets) -> None:
    words = lambda ws: md_escape(", ".join(w.strip() for w in ws[:8]) + (", ..." if len(ws) > 8 else ""))  # noqa: E731
    st.caption(f"Green: {md_escape(targets.plus_name)} ({words(targets.plus_words)}); "
               f"red: {md_escape(targets.minus_name)} ({words(targets.minus_words)}).")


def _pct(p: float) -> str:
    return f"{100 * p:.1f}%"


def effect_metrics(point: PointEffect, targets: ConceptTargets) -> None:
    """Four numbers at the current coefficient, each against the unsteered model."""
    v = point.vector
    cols = st.columns(4)
    cols[0].metric(f"P({targets.plus_name}) next", _pct(v.p_plus[1]),
                   f"{100 * (v.p_plus[1] - v.p_plus[0]):+.1f} pts", border=True,
                   help="Probability mass on the + words for the next token, averaged over the "
                        "evaluation prompts; the change is against the unsteered model.")
    cols[1].metric(f"P({targets.minus_name}) next", _pct(v.p_minus[1]),
                   f"{100 * (v.p_minus[1] - v.p_minus[0]):+.1f} pts", border=True,
                   delta_color="inverse")
    cols[2].metric("balance P(+) - P(-)", f"{100 * (v.p_plus[1] - v.p_minus[1]):+.1f} pts",
                   f"{100 * v.balance_shift:+.1f} pts", border=True,
                   help="What a push toward the concept must move: a push in any direction can lower "
                        "both kinds of words, which leaves the balance where it was.")
    cols[3].metric("random pushes", f"≤ {100 * point.largest_random_shift:.1f} pts", border=True,
                   help=f"The largest change of the balance among {len(point.randoms)} random directions "
                        "of the vector's norm at the same coefficient: the control.")


def _where(targets: ConceptTargets, concept: str | None) -> str:
    example = md_escape(targets.prompts[0])
    what = f"a {concept} word" if concept else "one of the words"
    return (f"on {len(targets.prompts)} prompts such as “{example}”, where {what} comes next")


def _over(texts) -> str:
    shown = f"the texts shown: {texts.plain_perplexity[0]:.1f} → {texts.steered_perplexity[0]:.1f}"
    if len(texts.seeds) == 1:
        return shown
    return f"geometric mean over {len(texts.seeds)} seeds from {texts.seeds[0]}; {shown}"


def verdict_box(outcome: V.SteeringOutcome, v: V.SteeringVerdict, *, layer: int | None,
                concept: str | None) -> None:
    """The verdict in words: every number and every claim comes from the verdict and the outcome."""
    t, p = outcome.targets, outcome.point
    toward = t.plus_name if outcome.toward_plus else t.minus_name
    if v.outcome is V.Outcome.NO_PUSH:
        st.info(f"Coefficient 0 adds nothing: the two texts are the same, and the numbers are the "
                f"unsteered model's (P({md_escape(t.plus_name)}) {_pct(p.vector.p_plus[0])}, "
                f"P({md_escape(t.minus_name)}) {_pct(p.vector.p_minus[0])}). Move the slider.",
                icon=":material/info:")
        return
    at = f"{layer_words(layer)}, " if layer is not None else ""
    if v.outcome is V.Outcome.NO_TEXT:
        st.info(f"**No new text**: the prompt fills the model's context window, so there is no text to "
                f"judge. On the next word, steering toward {md_escape(toward)} moved the balance "
                f"P(+) - P(-) by {100 * v.shift:+.1f} points, random pushes at most "
                f"{100 * v.random_shift:.1f}. Shorten the prompt to see the texts.", icon=":material/info:")
        return
    found = (f"Steering toward {md_escape(toward)} ({at}coefficient {p.coefficient:+.1f}) moved the "
             f"balance P(+) - P(-) by **{100 * v.shift:+.1f} points** toward it {_where(t, concept)} "
             f"(P({md_escape(t.plus_name)}) {_pct(p.vector.p_plus[0])} → {_pct(p.vector.p_plus[1])}, "
             f"P({md_escape(t.minus_name)}) {_pct(p.vector.p_minus[0])} → {_pct(p.vector.p_minus[1])}). "
             f"{len(p.randoms)} random directions of the same norm moved it at most "
             f"**{100 * v.random_shift:.1f} points**. The steered texts' perplexity is "
             f"**{v.perplexity_ratio:.2f}x** the unsteered ones' ({_over(outcome.texts)}).")
    rules = (f"Steering counts when the balance moves at least {100 * V.MIN_SHIFT:.0f} points, at least "
             f"{V.SPECIFICITY:g}x as far as any random push, and the perplexity stays within "
             f"{V.FLUENT_RATIO:g}x.")
    if v.outcome is V.Outcome.STEERS:
        st.success(f"**It steers, and the text stays fluent.** {found}", icon=":material/check_circle:")
    elif v.outcome is V.Outcome.SALAD:
        st.warning(f"**It moves the concept, but the text breaks down.** {found} More than "
                   f"{V.FLUENT_RATIO:g}x is text the model would not write itself: try a smaller "
                   "coefficient.", icon=":material/warning:")
    elif v.outcome is V.Outcome.NOT_SPECIFIC:
        st.warning(f"**A random push does about as much.** {found} The effect is the size of the push "
                   f"more than its direction (it needs {V.SPECIFICITY:g}x the random one): try another "
                   "layer.", icon=":material/warning:")
    elif v.outcome is V.Outcome.WRONG_WAY:
        st.warning(f"**It moved the concept the other way.** {found}", icon=":material/warning:")
    else:
        st.warning(f"**The concept did not move** (it needs {100 * V.MIN_SHIFT:.0f} points). {found} Try "
                   "a larger coefficient or another layer.", icon=":material/warning:")
    st.caption(rules)


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
            rows.append({"layer": sweep_label(int(layer)),
                         "coefficient": float(coef),
                         "effect": float(margin[li, ci] - margin[li, zero]),
                         "P(+)": float(sweep.p_plus[li, ci]), "P(-)": float(sweep.p_minus[li, ci]),
                         "vector norm": float(sweep.norms[li])})
    return pd.DataFrame(rows)
