"""Altair charts for the Activation patching page: frames in (ui.patching.frames), charts out."""

from __future__ import annotations

import altair as alt
import pandas as pd

EFFECT_SCHEME = "redblue"  # diverging: the share of the behaviour a patch restores (or destroys)
UNMEASURED = "#d0d0d0"  # a cell a sweep on a budget did not patch
DOOR_COLOURS = {"q": "#4e79a7", "k": "#f28e2b", "v": "#59a14f", "MLP in": "#b07aa1", "logits": "#e15759",
                "direct": "#e15759"}
GROUP_COLOURS = {"output": "#4e79a7", "q": "#f28e2b", "k": "#e15759", "v": "#59a14f", "pattern": "#b07aa1"}


def _cell(n: int, max_px: int = 620, min_cell: int = 10, max_cell: int = 44) -> int:
    return int(min(max_cell, max(min_cell, max_px // max(n, 1))))


def sweep_heatmap(frame: pd.DataFrame, *, row_title: str, col_title: str, effect_title: str,
                  columns: int = 2) -> alt.Chart:
    """Rows x columns coloured by effect (-1..1), one panel per facet; hover for every number."""
    rows = frame.sort_values("row_i")["row"].unique().tolist()
    cols = frame.sort_values("col_i")["col"].unique().tolist()
    cw, rh = _cell(len(cols)), _cell(len(rows), max_px=420, max_cell=34)
    color = alt.Color("effect:Q", title=effect_title,
                      scale=alt.Scale(scheme=EFFECT_SCHEME, domain=[-1, 1], reverse=True))
    tooltip = [alt.Tooltip("row:N", title=row_title), alt.Tooltip("col:N", title=col_title),
               alt.Tooltip("where:N", title="patched"), alt.Tooltip("hook:N", title="hook"),
               alt.Tooltip("effect:Q", format=".1%", title=effect_title),
               alt.Tooltip("normalised:Q", format=".3f", title="metric, normalised (clean 1, corrupted 0)"),
               alt.Tooltip("raw:Q", format=".3f", title="logit difference")]
    if "measured" in frame:  # a sweep on a budget: cells not patched are grey
        color = alt.condition("datum.measured", color, alt.value(UNMEASURED))
        tooltip = [*tooltip[:4], alt.Tooltip("status:N", title="exact?"), *tooltip[4:]]
    base = alt.Chart(frame).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("col:N", sort=cols, title=col_title,
                axis=alt.Axis(labelAngle=-50, labelLimit=140, labelFontSize=10, labelOverlap=False)),
        y=alt.Y("row:N", sort=rows[::-1], title=row_title),
        color=color, tooltip=tooltip,
    ).properties(width=alt.Step(cw), height=alt.Step(rh))
    if frame["panel"].nunique() > 1:
        order = frame["panel"].unique().tolist()
        return base.facet(facet=alt.Facet("panel:N", sort=order, title=None), columns=columns)
    return base


def path_heatmap(frame: pd.DataFrame) -> alt.Chart:
    """Sender head x receiver, one panel per door (q, k, v) and one for the direct path to the logits."""
    order = lambda s: tuple(int(x) for x in s.split("."))  # noqa: E731 ("2.10" after "2.9")
    senders = sorted(frame["sender"].unique(), key=order)
    receivers = sorted({r for r in frame["receiver"] if r != "logits"}, key=order)
    cell = _cell(max(len(receivers), 1), max_px=260, min_cell=8, max_cell=22)
    color = alt.Color("effect:Q", title="path's share",
                      scale=alt.Scale(scheme=EFFECT_SCHEME, domain=[-1, 1], reverse=True))
    tooltip = [alt.Tooltip("sender:N"), alt.Tooltip("receiver:N"), alt.Tooltip("door:N"),
               alt.Tooltip("effect:Q", format=".1%"),
               alt.Tooltip("raw:Q", format=".3f", title="logit difference")]
    heads = alt.Chart(frame[frame["door"] != "direct"]).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("receiver:N", sort=receivers, title="receiver head"),
        y=alt.Y("sender:N", sort=senders, title="sender head", scale=alt.Scale(domain=senders)),
        color=color, tooltip=tooltip,
    ).properties(width=alt.Step(cell), height=alt.Step(cell)).facet(
        column=alt.Column("door:N", sort=["q", "k", "v"], title="through the receiver's"))
    direct = alt.Chart(frame[frame["door"] == "direct"]).mark_rect(stroke="white", strokeWidth=0.5).encode(
        x=alt.X("receiver:N", title=None),
        y=alt.Y("sender:N", sort=senders, title="sender head", scale=alt.Scale(domain=senders)),
        color=color, tooltip=tooltip,
    ).properties(width=alt.Step(cell * 2), height=alt.Step(cell), title="direct to the logits")
    return alt.hconcat(heads, direct).resolve_scale(color="shared")


def attribution_scatter(frame: pd.DataFrame, estimate_title: str) -> alt.Chart:
    """Exact change (x) against the estimate (y), one dot per component; on the diagonal it is exact."""
    lo = float(min(frame["exact"].min(), frame["estimate"].min(), -0.1))
    hi = float(max(frame["exact"].max(), frame["estimate"].max(), 0.1))
    scale = alt.Scale(domain=[lo - 0.05, hi + 0.05])
    groups = [g for g in GROUP_COLOURS if g in set(frame["group"])]
    dots = alt.Chart(frame).mark_circle(size=60, opacity=0.8).encode(
        x=alt.X("exact:Q", scale=scale, title="exact patch: change of the metric (normalised)"),
        y=alt.Y("estimate:Q", scale=scale, title=f"{estimate_title}: estimated change"),
        color=alt.Color("group:N", title="component", scale=alt.Scale(domain=groups,
                        range=[GROUP_COLOURS[g] for g in groups])),
        tooltip=[alt.Tooltip("component:N"), alt.Tooltip("exact:Q", format=".3f"),
                 alt.Tooltip("estimate:Q", format=".3f"), alt.Tooltip("miss:Q", format=".3f")])
    line = alt.Chart(pd.DataFrame({"x": [lo - 0.05, hi + 0.05]})).mark_line(
        color="#888", strokeDash=[4, 4]).encode(x="x:Q", y="x:Q")
    return (line + dots).properties(width=460, height=420)


def circuit_graph(nodes: pd.DataFrame, edges: pd.DataFrame, n_heads: int, n_layers: int) -> alt.Chart:
    """Embed at the bottom, a row of heads (and the MLP to its right) per layer, the logits on top;
    edges coloured by the door they enter, thicker for larger |score|."""
    x = alt.Scale(domain=[-0.7, n_heads + 0.9])
    y = alt.Scale(domain=[-1.5, n_layers + 0.5])
    doors = [d for d in DOOR_COLOURS if d != "direct" and d in set(edges["door"])] or ["q"]
    lines = alt.Chart(edges).mark_rule(opacity=0.75).encode(
        x=alt.X("x:Q", scale=x, axis=None), y=alt.Y("y:Q", scale=y, axis=None), x2="x2:Q", y2="y2:Q",
        color=alt.Color("door:N", title="edge into", scale=alt.Scale(domain=doors,
                        range=[DOOR_COLOURS[d] for d in doors])),
        strokeWidth=alt.StrokeWidth("width:Q", title="|score|", scale=alt.Scale(range=[1, 7])),
        tooltip=[alt.Tooltip("edge:N"), alt.Tooltip("score:Q", format=".3f", title="score (normalised)")])
    dots = alt.Chart(nodes).mark_circle(size=520, stroke="#333", strokeWidth=1).encode(
        x=alt.X("x:Q", scale=x, axis=None), y=alt.Y("y:Q", scale=y, axis=None),
        color=alt.condition("datum['in circuit']", alt.value("#ffd166"), alt.value("#eeeeee")),
        tooltip=[alt.Tooltip("node:N"), alt.Tooltip("in circuit:N")])
    labels = alt.Chart(nodes).mark_text(fontSize=10, fontWeight="bold").encode(
        x=alt.X("x:Q", scale=x, axis=None), y=alt.Y("y:Q", scale=y, axis=None), text="node:N")
    return (lines + dots + labels).properties(width=min(900, 110 * (n_heads + 2)),
                                               height=90 * (n_layers + 2)).configure_view(stroke=None)


def faithfulness_curve(frame: pd.DataFrame, chosen: int) -> alt.Chart:
    line = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("edges kept:Q", title="edges in the circuit (after pruning)"),
        y=alt.Y("faithfulness:Q", title="faithfulness (clean 1, corrupted 0)",
                scale=alt.Scale(domain=[0, 1.1])),
        tooltip=["edges asked for:Q", "edges kept:Q", alt.Tooltip("faithfulness:Q", format=".3f")])
    rule = alt.Chart(pd.DataFrame({"x": [chosen]})).mark_rule(color="#e15759", strokeDash=[4, 3]).encode(
        x="x:Q")
    return (line + rule).properties(width=420, height=220)
