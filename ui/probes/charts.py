"""Altair charts for the probes page: data frames in, charts out (frames from ui.probes.frames)."""

from __future__ import annotations

import altair as alt
import pandas as pd

SERIES_COLORS = {"probe: held-out items": "#5b4bd5", "probe: seen items": "#9c92e6",
                 "control task": "#9a9a9a", "selectivity": "#e8843c", "cross-validated": "#3b8f6e"}
CONDITION_COLORS = ["#5b4bd5", "#d64545", "#e8843c", "#9a9a9a"]


def score_chart(scores: pd.DataFrame, metric: str, chance: float | None, chosen: str,
                *, height: int = 300) -> alt.LayerChart:
    """Lines per series over layers (scores: layer, order, series, score, lo, hi), a band for the
    cross-validation spread, a dashed chance line and a rule at the chosen layer."""
    order = list(scores.sort_values("order")["layer"].drop_duplicates())
    x = alt.X("layer:N", sort=order, title="layer", axis=alt.Axis(labelAngle=0))
    color = alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom"),
                      scale=alt.Scale(domain=list(SERIES_COLORS), range=list(SERIES_COLORS.values())))
    base = alt.Chart(scores)
    band = base.transform_filter(alt.datum.series == "cross-validated").mark_area(opacity=0.18).encode(
        x=x, y="lo:Q", y2="hi:Q", color=color)
    lines = base.mark_line(point=True, strokeWidth=2.5).encode(
        x=x, y=alt.Y("score:Q", title=metric),
        color=color,
        strokeDash=alt.condition(alt.datum.series == "control task", alt.value([5, 3]), alt.value([1, 0])),
        tooltip=["layer:N", "series:N", alt.Tooltip("score:Q", format=".3f")],
    )
    layers = [band, lines]
    if chance is not None:
        layers.append(alt.Chart(pd.DataFrame({"y": [chance], "label": ["chance"]})).mark_rule(
            strokeDash=[2, 4], color="#444").encode(y="y:Q", tooltip=["label:N", "y:Q"]))
    layers.append(alt.Chart(pd.DataFrame({"layer": [chosen]})).mark_rule(
        color="#5b4bd5", opacity=0.25, strokeWidth=14).encode(x=alt.X("layer:N", sort=order)))
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
        color=alt.Color("share:Q", title="share of row", scale=alt.Scale(domain=[0, 1], scheme="purples")),
        tooltip=["true:N", "predicted:N", "count:Q", alt.Tooltip("share:Q", format=".0%")])
    text = base.mark_text(fontSize=11).encode(
        text="count:Q",
        color=alt.condition(alt.datum.share > 0.55, alt.value("white"), alt.value("#222")))
    return (heat + text).properties(width=size, height=size)


def regression_chart(points: pd.DataFrame, *, size: int = 320) -> alt.LayerChart:
    """Predicted vs true for a numeric target (points: true, predicted), with the diagonal."""
    both = points[["true", "predicted"]]
    lo, hi = float(both.min().min()), float(both.max().max())
    dots = alt.Chart(points).mark_circle(opacity=0.35, size=30, color="#5b4bd5").encode(
        x=alt.X("true:Q", title="true value"), y=alt.Y("predicted:Q", title="probe predicts"),
        tooltip=[alt.Tooltip("true:Q"), alt.Tooltip("predicted:Q", format=".2f")])
    diagonal = alt.Chart(pd.DataFrame({"true": [lo, hi], "predicted": [lo, hi]})).mark_line(
        color="#444", strokeDash=[4, 4]).encode(x="true:Q", y="predicted:Q")
    return (diagonal + dots).properties(width=size, height=size)


def cosine_chart(cells: pd.DataFrame, order: list[str], *, size: int = 360) -> alt.LayerChart:
    """Cosine similarity of probe directions between layers (cells: a, b, cosine)."""
    base = alt.Chart(cells).encode(
        x=alt.X("a:N", sort=order, title="layer", axis=alt.Axis(labelAngle=0, labelOverlap=False)),
        y=alt.Y("b:N", sort=order, title="layer"))
    heat = base.mark_rect().encode(
        color=alt.Color("cosine:Q", scale=alt.Scale(domain=[-1, 0, 1], range=["#2c7bb6", "#f7f7f7",
                                                                           "#d7191c"])),
        tooltip=["a:N", "b:N", alt.Tooltip("cosine:Q", format=".2f")])
    text = base.mark_text(fontSize=11).encode(text=alt.Text("cosine:Q", format=".2f"))
    return (heat + text).properties(width=size, height=size)


def causal_chart(bars: pd.DataFrame, title: str, *, height: int = 220) -> alt.LayerChart:
    """Mean score per condition with +-2 standard errors, and the share of prompts where the right
    side wins written at each bar (bars: condition, mean, lo, hi, right)."""
    y = alt.Y("condition:N", sort=None, title=None, axis=alt.Axis(labelLimit=260, labelFontSize=12))
    color = alt.Color("condition:N", sort=None, legend=None,
                      scale=alt.Scale(domain=list(bars["condition"]), range=CONDITION_COLORS))
    base = alt.Chart(bars.assign(label=[f"{r:.0%} right" for r in bars["right"]]))
    bar = base.mark_bar(height=26).encode(
        x=alt.X("mean:Q", title=title), y=y, color=color,
        tooltip=["condition:N", alt.Tooltip("mean:Q", format=".3f"),
                 alt.Tooltip("right:Q", format=".0%", title="right side wins")])
    err = base.mark_errorbar(ticks=True, color="#222").encode(
        x=alt.X("lo:Q", title=title), x2="hi:Q", y=y)
    text = base.mark_text(align="left", dx=6, dy=-10, fontSize=11, color="#222").encode(
        x=alt.X("hi:Q", title=title), y=y, text="label:N")
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#444").encode(x=alt.X("x:Q", title=title))
    return alt.layer(bar, err, text, zero).properties(height=height)
