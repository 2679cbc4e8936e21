"""Altair charts for the training page: frames in (ui.training.frames), charts out. No st.* here."""

from __future__ import annotations

import altair as alt
import pandas as pd

PALETTE = "tableau10"
SHOWN_COLOUR, PHASE_COLOUR = "#5f6368", "#e8843c"
WEIGHT_SCHEME = "purples"  # attention weights, as on the Attention page


def _marks(step: int | None, marks: list[tuple[int, str]], y_top: float | None) -> list[alt.Chart]:
    """The dashed rule at the step shown, and a labelled orange rule per marked step."""
    layers = []
    if step is not None:
        layers.append(alt.Chart(pd.DataFrame({"step": [step]})).mark_rule(
            color=SHOWN_COLOUR, strokeDash=[4, 3]).encode(x="step:Q"))
    if marks:
        frame = pd.DataFrame([{"step": s, "label": label} for s, label in marks])
        layers.append(alt.Chart(frame).mark_rule(color=PHASE_COLOUR, strokeWidth=2).encode(
            x="step:Q", tooltip=[alt.Tooltip("label:N", title="marked"), alt.Tooltip("step:Q", format=",")]))
        layers.append(alt.Chart(frame).mark_text(
            color=PHASE_COLOUR, align="left", dx=4, baseline="top", fontSize=11,
        ).encode(x="step:Q", y=alt.value(4), text="label:N"))
    return layers


def timeline_lines(frame: pd.DataFrame, *, y_title: str, step: int | None = None,
                   marks: list[tuple[int, str]] | None = None, domain: tuple[float, float] | None = None,
                   height: int = 220, zero_rule: bool = False) -> alt.Chart:
    """Lines of value over training steps, one colour per series (frame: step, series, value).

    domain fixes the y axis (accuracy-like values: (0, 1)); step draws the scrubbed step; marks
    draws labelled orange rules (the phase change)."""
    y_scale = alt.Scale(domain=list(domain)) if domain else alt.Scale(zero=False)
    order = list(dict.fromkeys(frame["series"])) if len(frame) else []
    lines = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("step:Q", title="training step", axis=alt.Axis(format=",d")),
        y=alt.Y("value:Q", title=y_title, scale=y_scale),
        color=alt.Color("series:N", title=None, sort=order, scale=alt.Scale(scheme=PALETTE),
                        legend=alt.Legend(orient="bottom", labelLimit=240)),
        tooltip=[alt.Tooltip("step:Q", format=","), "series:N", alt.Tooltip("value:Q", format=".3f")]
        + ([alt.Tooltip("head:N")] if "head" in frame.columns else []),
    )
    layers = [lines, *_marks(step, marks or [], None)]
    if zero_rule:
        zero = alt.Chart(pd.DataFrame({"value": [0.0]})).mark_rule(color="#bdc1c6").encode(y="value:Q")
        layers.insert(0, zero)
    return alt.layer(*layers).properties(height=height)


def head_tables(frame: pd.DataFrame, *, title: str) -> alt.Chart:
    """Every head's score of each kind at one step: layers x heads, one panel per kind, 0-1 colours."""
    n_heads = int(frame["head"].max()) + 1 if len(frame) else 1
    cell = max(18, min(34, 420 // n_heads))
    base = alt.Chart(frame).encode(x=alt.X("head:O", title="head"), y=alt.Y("layer:O", title="layer"))
    heat = base.mark_rect().encode(
        color=alt.Color("score:Q", title=title, scale=alt.Scale(scheme=WEIGHT_SCHEME, domain=[0, 1])),
        tooltip=["kind:N", "layer:O", "head:O", alt.Tooltip("score:Q", format=".2f")])
    layers = [heat]
    if cell >= 26:
        layers.append(base.mark_text(fontSize=10).encode(
            text=alt.Text("score:Q", format=".2f"),
            color=alt.condition("datum.score > 0.6", alt.value("white"), alt.value("black"))))
    return alt.layer(*layers).properties(width=alt.Step(cell), height=alt.Step(cell)).facet(
        column=alt.Column("kind:N", title=None, sort=["previous-token", "induction"]), spacing=24)


def snapshot_grid(frame: pd.DataFrame, *, n_tokens: int, columns: int) -> alt.Chart:
    """Small multiples: every head's attention on the snapshot sequence (rows: queries, columns: keys)."""
    cell = max(5, min(10, 130 // max(1, n_tokens)))
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("k:O", title="key (looked at)", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("q:O", title="query", axis=alt.Axis(labels=False, ticks=False)),
        color=alt.Color("weight:Q", title="attention", scale=alt.Scale(scheme=WEIGHT_SCHEME, domain=[0, 1])),
        tooltip=[alt.Tooltip("q_label:N", title="query"), alt.Tooltip("k_label:N", title="key"),
                 alt.Tooltip("weight:Q", format=".2f", title="attention")],
    ).properties(width=alt.Step(cell), height=alt.Step(cell)).facet(
        facet=alt.Facet("name:N", title=None, sort=alt.SortField("order")), columns=columns, spacing=8)
