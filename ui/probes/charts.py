"""Altair charts for the probes page: data frames in, charts out (frames from ui.probes.frames)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

SERIES_COLORS = {"probe: held-out items": "#4e79a7", "probe: seen items": "#f28e2b",
                 "control task": "#79706e", "selectivity": "#e15759", "cross-validated": "#59a14f"}
SERIES_DASHES = {"probe: held-out items": [1, 0], "probe: seen items": [1, 0], "control task": [6, 3],
                 "selectivity": [2, 2], "cross-validated": [1, 0]}
CONDITION_COLORS = ["#4e79a7", "#e15759", "#f28e2b", "#9a9a9a"]


def score_chart(scores: pd.DataFrame, metric: str, chance: float | None, chosen: str,
                *, height: int = 300) -> alt.LayerChart:
    """Lines per series over layers (scores: layer, order, series, score, lo, hi), a band for the
    cross-validation spread, a dashed chance line and a rule at the chosen layer.

    One legend, drawn as strokes with each line's own colour and dash. The y axis is fixed: 0 to 1
    (lower only if a score, e.g. a negative selectivity or R², is below 0)."""
    order = list(scores.sort_values("order")["layer"].drop_duplicates())
    x = alt.X("layer:N", sort=order, title="layer (embed = before block 0)", axis=alt.Axis(labelAngle=0))
    low = min(0.0, np.floor(float(scores["score"].min()) * 10) / 10) if len(scores) else 0.0
    y_scale = alt.Scale(domain=[max(low, -1.0), 1.0], clamp=True)
    legend = alt.Legend(orient="bottom", columns=3, symbolType="stroke", symbolStrokeWidth=2.5,
                        symbolSize=300, labelLimit=220)
    color = alt.Color("series:N", title=None, legend=legend,
                      scale=alt.Scale(domain=list(SERIES_COLORS), range=list(SERIES_COLORS.values())))
    dash = alt.StrokeDash("series:N", title=None, legend=legend,
                          scale=alt.Scale(domain=list(SERIES_DASHES), range=list(SERIES_DASHES.values())))
    base = alt.Chart(scores)
    band = base.transform_filter(alt.datum.series == "cross-validated").mark_area(
        opacity=0.18, color=SERIES_COLORS["cross-validated"]).encode(
        x=x, y=alt.Y("lo:Q", scale=y_scale), y2="hi:Q")
    lines = base.mark_line(strokeWidth=2.5, point=alt.OverlayMarkDef(filled=True, size=45)).encode(
        x=x, y=alt.Y("score:Q", title=f"{metric} (0 to 1)", scale=y_scale), color=color, strokeDash=dash,
        tooltip=["layer:N", "series:N", alt.Tooltip("score:Q", format=".3f")],
    )
    layers = [band, lines]
    if chance is not None:
        line = pd.DataFrame({"y": [chance], "label": [f"chance {chance:.2f}"], "layer": [order[-1]]})
        layers.append(alt.Chart(line).mark_rule(strokeDash=[2, 4], color="#444").encode(
            y=alt.Y("y:Q", scale=y_scale), tooltip=["label:N"]))
        layers.append(alt.Chart(line).mark_text(align="right", dy=-7, fontSize=11, color="#444").encode(
            x=alt.X("layer:N", sort=order), y=alt.Y("y:Q", scale=y_scale), text="label:N"))
    layers.append(alt.Chart(pd.DataFrame({"layer": [chosen]})).mark_rule(
        color="#4e79a7", opacity=0.2, strokeWidth=14).encode(x=alt.X("layer:N", sort=order)))
    return alt.layer(*layers).properties(height=height)


def confusion_chart(cells: pd.DataFrame, *, size: int = 320) -> alt.LayerChart:
    """Heatmap of true (rows) vs predicted (columns); cells: true, predicted, count, share (of row).
    Grows with the number of classes so every label stays readable."""
    size = max(size, 26 * cells["true"].nunique())
    base = alt.Chart(cells).encode(
        x=alt.X("predicted:N", title="probe predicts", sort=None,
                axis=alt.Axis(labelAngle=-40, labelOverlap=False)),
        y=alt.Y("true:N", title="true label", sort=None, axis=alt.Axis(labelOverlap=False)))
    heat = base.mark_rect().encode(
        color=alt.Color("share:Q", title="share of row", scale=alt.Scale(domain=[0, 1], scheme="blues")),
        tooltip=["true:N", "predicted:N", "count:Q", alt.Tooltip("share:Q", format=".0%")])
    text = base.mark_text(fontSize=11).encode(
        text="count:Q",
        color=alt.condition(alt.datum.share > 0.55, alt.value("white"), alt.value("#222")))
    return (heat + text).properties(width=size, height=size)


def regression_chart(points: pd.DataFrame, *, size: int = 320) -> alt.LayerChart:
    """Predicted vs true for a numeric target (points: true, predicted), with the diagonal."""
    both = points[["true", "predicted"]]
    lo, hi = float(both.min().min()), float(both.max().max())
    dots = alt.Chart(points).mark_circle(opacity=0.35, size=30, color="#4e79a7").encode(
        x=alt.X("true:Q", title="true value"), y=alt.Y("predicted:Q", title="probe predicts"),
        tooltip=[alt.Tooltip("true:Q"), alt.Tooltip("predicted:Q", format=".2f")])
    diagonal = alt.Chart(pd.DataFrame({"true": [lo, hi], "predicted": [lo, hi]})).mark_line(
        color="#444", strokeDash=[4, 4]).encode(x="true:Q", y="predicted:Q")
    return (diagonal + dots).properties(width=size, height=size)


def cosine_chart(cells: pd.DataFrame, order: list[str], *, size: int = 300) -> alt.LayerChart:
    """Cosine similarity of probe directions between layers (cells: a, b, cosine); as wide as its
    column, so the numbers stay inside their cells at 1024 px."""
    base = alt.Chart(cells).encode(
        x=alt.X("a:N", sort=order, title="layer", axis=alt.Axis(labelAngle=-40, labelOverlap=False)),
        y=alt.Y("b:N", sort=order, title="layer"))
    heat = base.mark_rect().encode(
        color=alt.Color("cosine:Q", scale=alt.Scale(domain=[-1, 0, 1], range=["#2c7bb6", "#f7f7f7",
                                                                           "#d7191c"])),
        tooltip=["a:N", "b:N", alt.Tooltip("cosine:Q", format=".2f")])
    text = base.mark_text(fontSize=10).encode(text=alt.Text("cosine:Q", format=".1f"))
    return (heat + text).properties(width="container", height=size)


def causal_chart(bars: pd.DataFrame, title: str, *, height: int = 220) -> alt.LayerChart:
    """Mean score per condition with +-2 standard errors (bars: condition, mean, lo, hi, right). The
    share of prompts where the right side wins is part of each condition's axis label, so no text
    sits on the bars or whiskers."""
    y = alt.Y("condition:N", sort=None, title=None, axis=alt.Axis(labelLimit=340, labelFontSize=12))
    color = alt.Color("condition:N", sort=None, legend=None,
                      scale=alt.Scale(domain=list(bars["condition"]), range=CONDITION_COLORS))
    base = alt.Chart(bars)
    bar = base.mark_bar(height=26).encode(
        x=alt.X("mean:Q", title=title), y=y, color=color,
        tooltip=["condition:N", alt.Tooltip("mean:Q", format=".3f"),
                 alt.Tooltip("right:Q", format=".0%", title="right side wins")])
    err = base.mark_errorbar(ticks=True, color="#222").encode(
        x=alt.X("lo:Q", title=title), x2="hi:Q", y=y)
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#444").encode(x=alt.X("x:Q", title=title))
    return alt.layer(bar, err, zero).properties(height=height)
