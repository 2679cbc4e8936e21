"""Altair charts for the SAE page: data frames in, charts out (no st.* here)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from core.interp.sae.verdict import FOUND_AUROC, STATUSES

STATUS_COLORS = alt.Scale(domain=list(STATUSES), range=["#2e7d32", "#c77c00", "#8c8c8c", "#dcdcdc"])
UP, DOWN = "#2e9d5b", "#c2452d"
FOUND_LINE = "#2e7d32"
METRIC_TITLES = {
    "explained_variance": "explained variance", "l0": "L0 (active features per token)",
    "dead_fraction": "dead fraction", "loss_recovered": "CE loss recovered",
}


def ground_truth_chart(frame: pd.DataFrame) -> alt.LayerChart:
    """One bar per attribute: the best feature's AUROC, coloured by the verdict (found, near miss,
    not found; absent attributes have no bar), and the dashed line where "found" starts (FOUND_AUROC,
    the same constant the verdict uses). frame: ui.sae.frames.matches_frame."""
    scale = alt.Scale(domain=[0.5, 1], clamp=True, nice=False)
    base = alt.Chart(frame)
    y = alt.Y("attribute:N", sort=None, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=160))
    bars = base.mark_bar(clip=True).encode(
        y=y, x=alt.X("auroc:Q", scale=scale, title="AUROC of the best feature",
                     axis=alt.Axis(values=[0.5, 0.6, 0.7, 0.8, 0.9, 1.0], format=".1f")),
        color=alt.Color("status:N", scale=STATUS_COLORS, title=None,
                        legend=alt.Legend(orient="top", direction="horizontal")),
        tooltip=["attribute:N", "status:N", alt.Tooltip("feature:Q", title="best feature"),
                 alt.Tooltip("auroc:Q", format=".3f"), alt.Tooltip("precision:Q", format=".2f"),
                 alt.Tooltip("recall:Q", format=".2f")],
    )
    inside = base.transform_filter("isValid(datum.auroc)").mark_text(
        align="right", dx=-4, fontSize=11, color="white", fontWeight="bold").encode(
        y=y, x=alt.X("auroc:Q", scale=scale), text="label:N")
    absent = base.transform_filter("!isValid(datum.auroc)").mark_text(
        align="left", dx=4, fontSize=11, color="#666").encode(y=y, x=alt.datum(0.5), text="label:N")
    rule = alt.Chart(pd.DataFrame({"t": [FOUND_AUROC], "text": [f"found at AUROC >= {FOUND_AUROC:g}"]}))
    line = rule.mark_rule(strokeDash=[4, 3], color="#333").encode(x=alt.X("t:Q", scale=scale))
    words = rule.mark_text(align="right", dx=-4, dy=-8, fontSize=11, color="#333").encode(
        x=alt.X("t:Q", scale=scale), y=alt.value(0), text="text:N")
    return alt.layer(bars, inside, absent, line, words).properties(height=28 * max(len(frame), 1) + 30)


def training_curves(history: pd.DataFrame) -> alt.FacetChart:
    """Small multiples of the training metrics over steps. history: step, metric, value."""
    frame = history.assign(title=history["metric"].map(METRIC_TITLES))
    line = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("step:Q", title="step"),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=".3~g")),
        tooltip=["step:Q", "title:N", alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=140, height=110)
    return line.facet(facet=alt.Facet("title:N", title=None, sort=list(METRIC_TITLES.values())),
                      columns=4).resolve_scale(y="independent")


def sweep_chart(points: pd.DataFrame, x_title: str, max_found: int) -> alt.Chart | alt.HConcatChart:
    """Left: sparsity (L0) against reconstruction, one point per SAE. Right (once a sweep ran):
    attributes found (axis 0 to max_found) against the sparsity setting. points: l0,
    explained_variance, found, loss_recovered, setting, source ("sweep" or "your SAEs"), label."""
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
    dots = base.mark_point(filled=True, size=130, opacity=1).encode(
        x=x, y=y,
        color=alt.Color("found:Q", scale=alt.Scale(scheme="viridis", domain=[0, max_found]),
                        title="attributes found"),
        shape=alt.Shape("source:N", title=None,
                        scale=alt.Scale(domain=["sweep", "your SAEs"], range=["circle", "diamond"])),
        tooltip=tooltip,
    )
    left = (frontier + dots).properties(width=340, height=240, title="Sparsity vs reconstruction")
    if not (points["source"] == "sweep").any():
        return left
    right = base.transform_filter(alt.datum.source == "sweep").mark_line(
        point=alt.OverlayMarkDef(filled=True, size=70, color=FOUND_LINE), color=FOUND_LINE).encode(
        x=alt.X("setting:Q", title=x_title, scale=alt.Scale(type="log"), axis=alt.Axis(format="~g")),
        y=alt.Y("found:Q", title="attributes found", scale=alt.Scale(domain=[0, max_found]),
                axis=alt.Axis(format="d", tickMinStep=1)),
        tooltip=tooltip,
    ).properties(width=240, height=240, title="Ground truth found, by setting")
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
        y=alt.Y("token:N", sort=alt.EncodingSortField("value", order="descending"), title=None,
                axis=alt.Axis(labelOverlap=False, labelLimit=120)),
        x=alt.X("value:Q", title="logit effect (W_dec @ W_U)"),
        color=alt.Color("side:N", scale=alt.Scale(domain=["raises", "lowers"], range=[UP, DOWN]),
                        legend=None),
        tooltip=["token:N", alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=22 * max(len(frame), 1) + 20)
