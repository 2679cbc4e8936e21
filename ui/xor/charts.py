"""Altair charts for the XOR page: data frames in, charts out (frames come from ui.xor.frames)."""

from __future__ import annotations

import altair as alt
import pandas as pd

CLASS_COLORS = ["#3b6fb6", "#e8843c"]  # class 0 blue, class 1 orange, everywhere on the page
WEIGHT_SCHEME = ["#7b3294", "#f7f7f7", "#008837"]  # negative purple, zero white, positive green


def _class_scale(names: list[str]) -> alt.Scale:
    return alt.Scale(domain=names, range=CLASS_COLORS)


def _points(points: pd.DataFrame, class_names: list[str], size: int) -> alt.Chart:
    return alt.Chart(points).mark_point(filled=True, stroke="#222", strokeWidth=1.2, opacity=1).encode(
        x="x1:Q", y="x2:Q",
        color=alt.Color("cls:N", scale=_class_scale(class_names), title="class"),
        shape=alt.Shape("result:N", scale=alt.Scale(domain=["right", "wrong"], range=["circle", "cross"]),
                        legend=None),
        size=alt.value(size),
        tooltip=[alt.Tooltip("x1:Q", format=".3f"), alt.Tooltip("x2:Q", format=".3f"), "cls:N",
                 alt.Tooltip("p:Q", format=".3f", title="p(class 1)"), "result:N"],
    )


def _exact(low: float, high: float) -> alt.Scale:
    """A scale whose domain is exactly the grid: no margin around the heatmap."""
    return alt.Scale(domain=[low, high], nice=False, zero=False)


def _heat(chart: alt.Chart, field: str, title: str, scale: alt.Scale, x: alt.X, y: alt.Y) -> alt.Chart:
    """Grid cells filled and outlined in their own colour: the outline hides the hairline seams a
    browser leaves between rectangles when the chart is scaled to fit its column."""
    return chart.mark_rect(opacity=1, strokeWidth=0.8).encode(
        x=x, x2="x2:Q", y=y, y2="y2:Q",
        color=alt.Color(f"{field}:Q", title=title, scale=scale, legend=alt.Legend(title=title)),
        stroke=alt.Stroke(f"{field}:Q", scale=scale, legend=None),
    )


def boundary_chart(cells: pd.DataFrame, points: pd.DataFrame, class_names: list[str], *, title: str = "",
                   size: int = 360, point_size: int = 200) -> alt.LayerChart:
    """Heatmap of p(class 1) over the plane (cells: x, x2, y, y2, value) with the data on top
    (points: x1, x2, cls, p, result; a wrong one is drawn as a cross)."""
    probability = alt.Scale(domain=[0, 0.5, 1], range=[CLASS_COLORS[0], "#f7f7f7", CLASS_COLORS[1]])
    heat = _heat(alt.Chart(cells), "value", "p(class 1)", probability,
                 alt.X("x:Q", title="x1", scale=_exact(cells["x"].min(), cells["x2"].max())),
                 alt.Y("y:Q", title="x2", scale=_exact(cells["y"].min(), cells["y2"].max())))
    return (heat + _points(points, class_names, point_size)).properties(width=size, height=size, title=title)


def unit_maps_chart(frame: pd.DataFrame, domain: list[float], *, columns: int = 4, size: int = 130,
                    dot_size: int = 14) -> alt.FacetChart:
    """Small multiples: each hidden unit's activation over the plane, with its own boundary
    (activation at its midpoint, white) and the data as dots. frame: kind, unit, x, x2, y, y2, value."""
    mid = [domain[0], (domain[0] + domain[1]) / 2, domain[1]]
    base = alt.Chart(frame)
    bare, tight = alt.Axis(labels=False, ticks=False), alt.Scale(nice=False, zero=False)
    heat = _heat(base.transform_filter(alt.datum.kind == "cell"), "value", "activation",
                 alt.Scale(domain=mid, range=WEIGHT_SCHEME), alt.X("x:Q", title=None, scale=tight, axis=bare),
                 alt.Y("y:Q", title=None, scale=tight, axis=bare))
    dots = base.transform_filter(alt.datum.kind == "point").mark_circle(size=dot_size, opacity=0.8).encode(
        x="x:Q", y="y:Q",
        color=alt.value("black"),
        tooltip=[alt.Tooltip("value:Q", format=".3f", title="activation"), "unit:N"],
    )
    return alt.layer(heat, dots).properties(width=size, height=size).facet(
        facet=alt.Facet("unit:N", title=None, sort=list(dict.fromkeys(frame["unit"]))), columns=columns,
    ).resolve_scale(x="independent", y="independent")


def network_chart(nodes: pd.DataFrame, edges: pd.DataFrame, *, value_title: str = "weight",
                  width: int = 420, height: int = 320, detail: bool = False,
                  top: float | None = None) -> alt.LayerChart:
    """The network drawn: edges (px, py, px2, py2, value, name) as lines whose width is |value| and
    colour its sign; nodes (px, py, name, label, ...) as named circles, with `label` (lines of numbers)
    written under each node when detail is True. `top` fixes the |value| drawn widest (default: the
    largest here), so frames of one run share a scale."""
    top = top or (float(edges["value"].abs().max()) if len(edges) else 1.0) or 1.0
    scale_x = alt.Scale(domain=[nodes["px"].min() - 0.35, nodes["px"].max() + 0.35])
    scale_y = alt.Scale(domain=[nodes["py"].min() - 0.8, nodes["py"].max() + 0.8])
    lines = alt.Chart(edges).mark_rule(opacity=0.85).encode(
        x=alt.X("px:Q", scale=scale_x, axis=None), y=alt.Y("py:Q", scale=scale_y, axis=None),
        x2="px2:Q", y2="py2:Q",
        color=alt.Color("value:Q", title=value_title,
                        scale=alt.Scale(domain=[-top, 0, top], range=WEIGHT_SCHEME)),
        strokeWidth=alt.StrokeWidth("magnitude:Q", scale=alt.Scale(domain=[0, top], range=[0.5, 9]),
                                    legend=None),
        tooltip=["name:N", alt.Tooltip("value:Q", format=".4f", title=value_title)],
    )
    node_tips = ["name:N"] + (["info:N"] if nodes["info"].str.len().any() else [])
    at = {"x": alt.X("px:Q", scale=scale_x), "y": alt.Y("py:Q", scale=scale_y)}
    gap = height / (nodes["py"].max() - nodes["py"].min() + 1.6)  # pixels between two units of a layer
    diameter = min(30.0, 0.85 * gap)
    circles = alt.Chart(nodes).mark_circle(size=diameter**2, stroke="#333", strokeWidth=1.2, opacity=1)
    circles = circles.encode(**at, color=alt.value("#ffffff"), tooltip=node_tips)
    names = alt.Chart(nodes).mark_text(fontSize=min(11, int(diameter / 2.4)), fontWeight="bold").encode(
        **at, text="name:N")
    layers = [lines, circles, names]
    if detail:
        along = alt.Chart(edges).transform_calculate(  # a third of the way along each edge
            tx="datum.px + 0.3 * (datum.px2 - datum.px)", ty="datum.py + 0.3 * (datum.py2 - datum.py)")
        layers.append(along.mark_text(fontSize=10, dy=-7, color="#222").encode(
            x=alt.X("tx:Q", scale=scale_x), y=alt.Y("ty:Q", scale=scale_y),
            text=alt.Text("value:Q", format=".3g")))
        layers.append(alt.Chart(nodes).mark_text(fontSize=10, lineBreak="\n", baseline="top", dy=19,
                                                 color="#333").encode(**at, text="label:N"))
    return alt.layer(*layers).properties(width=width, height=height)


def hidden_space_chart(points: pd.DataFrame, line: pd.DataFrame | None, class_names: list[str], *,
                       u_label: str, v_label: str, size: int = 320) -> alt.LayerChart:
    """The examples at their last-hidden-layer coordinates (u, v), and the output unit's line."""
    dots = alt.Chart(points).mark_point(filled=True, stroke="black", strokeWidth=0.8, opacity=1,
                                        size=90).encode(
        x=alt.X("u:Q", title=u_label, scale=alt.Scale(zero=False)),
        y=alt.Y("v:Q", title=v_label, scale=alt.Scale(zero=False)),
        color=alt.Color("cls:N", scale=_class_scale(class_names), title="class"),
        tooltip=["point:N", "cls:N", alt.Tooltip("u:Q", format=".3f"), alt.Tooltip("v:Q", format=".3f")],
    )
    layers = [dots]
    if "text" in points.columns:
        layers.append(alt.Chart(points).mark_text(align="left", dx=9, fontSize=11).encode(
            x="u:Q", y="v:Q", text="text:N"))
    if line is not None and len(line) == 2:
        layers.insert(0, alt.Chart(line).mark_line(color="black", strokeDash=[6, 4], strokeWidth=2).encode(
            x="u:Q", y="v:Q"))
    return alt.layer(*layers).properties(width=size, height=size)


def _epoch_rule(epoch: int) -> alt.Chart:
    return alt.Chart(pd.DataFrame({"epoch": [epoch]})).mark_rule(color="black", strokeDash=[4, 3]).encode(
        x="epoch:Q")


def loss_chart(losses: pd.DataFrame, epoch: int, *, log: bool = True, height: int = 220) -> alt.LayerChart:
    """Loss after each epoch (epoch, loss), with a rule at the epoch being shown."""
    y_scale = alt.Scale(type="log") if log else alt.Scale(zero=True)
    line = alt.Chart(losses).mark_line(color="#5b4bd5").encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("loss:Q", title="loss", scale=y_scale),
        tooltip=["epoch:Q", alt.Tooltip("loss:Q", format=".5f")],
    )
    return alt.layer(line, _epoch_rule(epoch)).properties(height=height)


def trajectory_chart(frame: pd.DataFrame, epoch: int, *, height: int = 260) -> alt.LayerChart:
    """Each weight's value over the saved snapshots (epoch, value, name), with a rule at `epoch`."""
    many = frame["name"].nunique() > 12
    lines = alt.Chart(frame).mark_line(strokeWidth=1.5).encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title="weight value"),
        color=alt.Color("name:N", title="weight", sort=None, legend=None if many else alt.Legend(columns=2)),
        tooltip=["name:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")],
    )
    return alt.layer(lines, _epoch_rule(epoch)).properties(height=height)
