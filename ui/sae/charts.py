"""Altair charts for the SAE page: data frames in, charts out (no st.* here)."""

from __future__ import annotations

import altair as alt
import pandas as pd

FOUND_COLORS = alt.Scale(domain=["found", "not found"], range=["#2e9d5b", "#c9c9c9"])
UP, DOWN = "#2e9d5b", "#c2452d"
METRIC_TITLES = {
    "explained_variance": "explained variance", "l0": "L0 (active features per token)",
    "dead_fraction": "dead fraction", "loss_recovered": "CE loss recovered",
}


def ground_truth_chart(frame: pd.DataFrame, threshold: float) -> alt.LayerChart:
    """One bar per attribute: the best feature's AUROC, green when found. frame: attribute,
    auroc, feature, precision, recall, status."""
    base = alt.Chart(frame)
    bars = base.mark_bar(clip=True).encode(
        y=alt.Y("attribute:N", sort=None, title=None, axis=alt.Axis(labelOverlap=False)),
        x=alt.X("auroc:Q", scale=alt.Scale(domain=[0.5, 1]), title="AUROC of the best feature"),
        color=alt.Color("status:N", scale=FOUND_COLORS, title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["attribute:N", alt.Tooltip("feature:Q", title="best feature"),
                 alt.Tooltip("auroc:Q", format=".3f"), alt.Tooltip("precision:Q", format=".2f"),
                 alt.Tooltip("recall:Q", format=".2f")],
    )
    labels = base.mark_text(align="left", dx=3, fontSize=11).encode(
        y=alt.Y("attribute:N", sort=None), x="auroc:Q",
        text=alt.Text("label:N"),
    ).transform_calculate(label="'#' + datum.feature + '  ' + format(datum.auroc, '.2f')")
    rule = alt.Chart(pd.DataFrame({"t": [threshold]})).mark_rule(strokeDash=[4, 3]).encode(x="t:Q")
    return alt.layer(bars, labels, rule).properties(height=28 * max(len(frame), 1) + 20)


def training_curves(history: pd.DataFrame) -> alt.FacetChart:
    """Small multiples of the training metrics over steps. history: step, metric, value."""
    frame = history.assign(title=history["metric"].map(METRIC_TITLES))
    line = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format="~g")),
        tooltip=["step:Q", "title:N", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=160, height=110)
    return line.facet(facet=alt.Facet("title:N", title=None, sort=list(METRIC_TITLES.values())),
                      columns=4).resolve_scale(y="independent")


def sweep_chart(points: pd.DataFrame, x_title: str) -> alt.Chart | alt.HConcatChart:
    """Left: sparsity (L0) against reconstruction, one point per SAE. Right (once a sweep ran):
    attributes found against the sparsity setting. points: l0, explained_variance, found,
    loss_recovered, setting, source ("sweep" or "your SAEs"), label."""
    base = alt.Chart(points)
    tooltip = ["label:N", alt.Tooltip("l0:Q", format=".1f"),
               alt.Tooltip("explained_variance:Q", format=".3f"),
               alt.Tooltip("loss_recovered:Q", format=".1%"), "found:Q"]
    x = alt.X("l0:Q", scale=alt.Scale(type="log"), title="L0 (active features per token, log)",
              axis=alt.Axis(format="~s"))
    y = alt.Y("explained_variance:Q", title="explained variance", scale=alt.Scale(zero=False),
              axis=alt.Axis(format=".2f"))
    frontier = base.transform_filter(alt.datum.source == "sweep").mark_line(
        color="#999", strokeDash=[3, 3]).encode(x=x, y=y, order="l0:Q")
    dots = base.mark_point(filled=True, size=120, stroke="black", strokeWidth=0.6).encode(
        x=x, y=y,
        color=alt.Color("found:O", scale=alt.Scale(scheme="greens"), title="attributes found"),
        shape=alt.Shape("source:N", title=None,
                        scale=alt.Scale(domain=["sweep", "your SAEs"], range=["circle", "diamond"])),
        tooltip=tooltip,
    )
    left = (frontier + dots).properties(width=360, height=240, title="Sparsity vs reconstruction")
    if not (points["source"] == "sweep").any():
        return left
    right = base.transform_filter(alt.datum.source == "sweep").mark_line(
        point=alt.OverlayMarkDef(filled=True, size=70), color="#2e9d5b").encode(
        x=alt.X("setting:Q", title=x_title, scale=alt.Scale(type="log"), axis=alt.Axis(format="~g")),
        y=alt.Y("found:Q", title="attributes found", scale=alt.Scale(domainMin=0),
                axis=alt.Axis(format="d", tickMinStep=1)),
        tooltip=tooltip,
    ).properties(width=260, height=240, title="Ground truth found, by setting")
    return alt.hconcat(left, right)


def histogram_chart(values: pd.DataFrame, title: str = "") -> alt.Chart:
    """Histogram of one feature's non-zero activations. values: act."""
    return alt.Chart(values).mark_bar(color="#5b4bd5").encode(
        x=alt.X("act:Q", bin=alt.Bin(maxbins=30), title="activation (where non-zero)"),
        y=alt.Y("count():Q", title="tokens"),
        tooltip=[alt.Tooltip("count():Q", title="tokens")],
    ).properties(height=180, title=title)


def logit_chart(frame: pd.DataFrame) -> alt.Chart:
    """Horizontal bars of W_dec @ W_U for the top and bottom tokens. frame: token, value, side."""
    return alt.Chart(frame).mark_bar().encode(
        y=alt.Y("token:N", sort=alt.EncodingSortField("value", order="descending"), title=None),
        x=alt.X("value:Q", title="logit effect (W_dec @ W_U)"),
        color=alt.Color("side:N", scale=alt.Scale(domain=["raises", "lowers"], range=[UP, DOWN]),
                        legend=None),
        tooltip=["token:N", alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=16 * max(len(frame), 1) + 20)
