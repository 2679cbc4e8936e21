"""Altair charts for the XOR page: layout in, chart out; the data are named datasets filled per frame.

Every chart here reads *named* datasets (CELLS, POINTS, ...) rather than carrying its data. The
player builds each chart once per run (`template`: Altair is slow to build and validate, about 80 ms
a chart) and then sends only new data each frame (`fill`); because the spec stays the same, the
browser updates the drawn chart in place instead of building it again. Frames come from
ui.xor.frames.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import altair as alt
import pandas as pd

CLASS_COLORS = ["#3b6fb6", "#e8843c"]  # class 0 blue, class 1 orange, everywhere on the page
WEIGHT_SCHEME = ["#7b3294", "#f7f7f7", "#008837"]  # negative purple, zero white, positive green
EDGE_SCHEME = ["#7b3294", "#bdbdbd", "#008837"]  # the same for lines: a weight near 0 stays visible (grey)
P_STOPS, P_COLOURS = (0.0, 0.5, 1.0), (CLASS_COLORS[0], "#f7f7f7", CLASS_COLORS[1])  # p(class 1)

# The named datasets the charts read.
CELLS, POINTS = "cells", "points"  # boundary: its picture (x, x2, y, y2, url, value); the data points
NODES, EDGES, EDGE_LABELS = "nodes", "edges", "edge_labels"  # network: units, one edge per weight, labels
UNITS = "units"  # hidden units: one picture per unit, and the data's activations
HIDDEN, LINE = "hidden", "line"  # hidden space: points (u, v, cls, point[, text]); the output's line
LOSSES, EPOCH = "losses", "epoch"  # loss curve (epoch, loss); the epoch shown (epoch)
TRAJECTORY = "trajectory"  # weight values (epoch, name, value)


def _class_scale(names: tuple[str, ...]) -> alt.Scale:
    return alt.Scale(domain=list(names), range=CLASS_COLORS)


def _points(class_names: tuple[str, ...], size: int) -> alt.Chart:
    return alt.Chart(alt.NamedData(POINTS)).mark_point(filled=True, stroke="#222", strokeWidth=1.2,
                                                         opacity=1).encode(
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


def _picture(chart: alt.Chart, x: alt.X, y: alt.Y) -> alt.Chart:
    """A grid drawn as one image stretched over its box (x, x2, y, y2; url): one mark per frame."""
    return chart.mark_image(aspect=False).encode(x=x, x2="x2:Q", y=y, y2="y2:Q", url="url:N")


def _legend(chart: alt.Chart, title: str, stops: tuple, palette: tuple, x: alt.X, y: alt.Y) -> alt.Chart:
    """An invisible mark that carries the picture's colour scale, so the legend matches its colours."""
    scale = alt.Scale(domain=list(stops), range=list(palette), interpolate="rgb")
    return chart.mark_rect(opacity=0).encode(x=x, x2="x2:Q", y=y, y2="y2:Q",
                                             color=alt.Color("value:Q", title=title, scale=scale))


def boundary_chart(class_names: tuple[str, ...], x_domain: tuple[float, float], y_domain: tuple[float, float],
                   *, size: int = 360, point_size: int = 200) -> alt.LayerChart:
    """p(class 1) over the plane as a picture (CELLS: x, x2, y, y2, url, value; frames.boundary_frame)
    with the data on top (POINTS: x1, x2, cls, p, result; a wrong one is drawn as a cross). The
    domains are the grid's."""
    x = alt.X("x:Q", title="x1", scale=_exact(*x_domain))
    y = alt.Y("y:Q", title="x2", scale=_exact(*y_domain))
    cells = alt.Chart(alt.NamedData(CELLS))
    return alt.layer(_picture(cells, x, y), _legend(cells, "p(class 1)", P_STOPS, P_COLOURS, x, y),
                     _points(class_names, point_size)).properties(width=size, height=size)


def unit_maps_chart(units: tuple[str, ...], domain: tuple[float, float], *, columns: int = 4, size: int = 130,
                    dot_size: int = 14) -> alt.FacetChart:
    """Small multiples: each hidden unit's activation over the plane as a picture (its own boundary,
    the activation at the middle of `domain`, is white), with the data as dots. UNITS: kind
    ("image": x, x2, y, y2, url; "point": x, y, value), unit; `units` are the panel names in order."""
    stops = (domain[0], (domain[0] + domain[1]) / 2, domain[1])
    base = alt.Chart(alt.NamedData(UNITS))
    bare, tight = alt.Axis(labels=False, ticks=False), alt.Scale(nice=False, zero=False)
    x, y = alt.X("x:Q", title=None, scale=tight, axis=bare), alt.Y("y:Q", title=None, scale=tight, axis=bare)
    images = base.transform_filter(alt.datum.kind == "image")
    legend = base.transform_filter(alt.datum.kind == "point").mark_rect(opacity=0).encode(
        x=x, y=y, color=alt.Color("value:Q", title="activation", scale=alt.Scale(
            domain=list(stops), range=WEIGHT_SCHEME, interpolate="rgb")))
    dots = base.transform_filter(alt.datum.kind == "point").mark_circle(size=dot_size, opacity=0.8).encode(
        x="x:Q", y="y:Q",
        color=alt.value("black"),
        tooltip=[alt.Tooltip("value:Q", format=".3f", title="activation"), "unit:N"],
    )
    return alt.layer(_picture(images, x, y), legend, dots).properties(width=size, height=size).facet(
        facet=alt.Facet("unit:N", title=None, sort=list(units)), columns=columns,
    ).resolve_scale(x="independent", y="independent")


# Where an edge's number sits (ui.xor.frames.edge_labels_frame): 40% of the way from its left unit,
# then moved LABEL_OFFSET_PX off the line along the edge's normal, so the line never runs through its
# own number; edges that leave one unit fan out, so their numbers sit at different heights. Each
# number is drawn on a white halo, so a line that crosses it cannot strike it through.
LABEL_AT = 0.4
LABEL_OFFSET_PX = 9.0


def network_domains(extent: tuple[float, float, float, float]
                    ) -> tuple[tuple[float, float], tuple[float, float]]:
    """The x and y scale domains of the network chart, from the nodes' extent (room for the circles)."""
    x0, x1, y0, y1 = extent
    return (x0 - 0.35, x1 + 0.35), (y0 - 0.8, y1 + 0.8)


def network_chart(extent: tuple[float, float, float, float], *, top: float, value_title: str = "weight",
                  width: int = 420, height: int = 320, detail: bool = False, node_info: bool = False
                  ) -> alt.LayerChart:
    """The network drawn (NODES: px, py, name, label, info; EDGES: px, py, px2, py2, value, magnitude,
    name): edges as lines whose width is |value| and colour its sign; nodes as named circles. With
    detail, EDGE_LABELS (tx, ty, text) puts each edge's number beside its line, and each
    node's `label` (lines of numbers) is written under it. extent = (min px, max px, min py, max py)
    of the nodes; `top` is the |value| drawn widest, one scale for every frame of a run."""
    top = top or 1.0
    (x_lo, x_hi), (y_lo, y_hi) = network_domains(extent)
    y0, y1 = extent[2], extent[3]
    scale_x = alt.Scale(domain=[x_lo, x_hi])
    scale_y = alt.Scale(domain=[y_lo, y_hi])
    lines = alt.Chart(alt.NamedData(EDGES)).mark_rule(opacity=0.85).encode(
        x=alt.X("px:Q", scale=scale_x, axis=None), y=alt.Y("py:Q", scale=scale_y, axis=None),
        x2="px2:Q", y2="py2:Q",
        color=alt.Color("value:Q", title=value_title,
                        scale=alt.Scale(domain=[-top, 0, top], range=EDGE_SCHEME)),
        strokeWidth=alt.StrokeWidth("magnitude:Q", scale=alt.Scale(domain=[0, top], range=[0.5, 9]),
                                    legend=None),
        tooltip=["name:N", alt.Tooltip("value:Q", format=".4f", title=value_title)],
    )
    node_tips = ["name:N"] + (["info:N"] if node_info else [])
    at = {"x": alt.X("px:Q", scale=scale_x), "y": alt.Y("py:Q", scale=scale_y)}
    gap = height / (y1 - y0 + 1.6)  # pixels between two units of a layer
    diameter = min(30.0, 0.85 * gap)
    nodes = alt.Chart(alt.NamedData(NODES))
    circles = nodes.mark_circle(size=diameter**2, stroke="#333", strokeWidth=1.2, opacity=1)
    circles = circles.encode(**at, color=alt.value("#ffffff"), tooltip=node_tips)
    names = nodes.mark_text(fontSize=min(11, int(diameter / 2.4)), fontWeight="bold")
    names = names.encode(**at, text="name:N")
    layers = [lines, circles, names]
    if detail:
        # the halo: the same text in a thick white stroke underneath, so a crossing line cannot strike it
        label = {"x": alt.X("tx:Q", scale=scale_x), "y": alt.Y("ty:Q", scale=scale_y), "text": "text:N"}
        for halo in (True, False):
            mark = alt.Chart(alt.NamedData(EDGE_LABELS)).mark_text(
                fontSize=10, align="center", baseline="middle", color="#222",
                **({"stroke": "white", "strokeWidth": 4, "strokeJoin": "round"} if halo else {}))
            layers.append(mark.encode(**label))
        layers.append(nodes.mark_text(fontSize=10, lineBreak="\n", baseline="top", dy=19,
                                      color="#333").encode(**at, text="label:N"))
    return alt.layer(*layers).properties(width=width, height=height)


def hidden_space_chart(class_names: tuple[str, ...], *, u_label: str, v_label: str, labelled: bool,
                       size: int = 320) -> alt.LayerChart:
    """The examples at their last-hidden-layer coordinates (HIDDEN: u, v, cls, point[, text]), and
    the output unit's line (LINE: u, v; empty when it misses the picture)."""
    dots = alt.Chart(alt.NamedData(HIDDEN)).mark_point(filled=True, stroke="black", strokeWidth=0.8,
                                                        opacity=1, size=90).encode(
        x=alt.X("u:Q", title=u_label, scale=alt.Scale(zero=False)),
        y=alt.Y("v:Q", title=v_label, scale=alt.Scale(zero=False)),
        color=alt.Color("cls:N", scale=_class_scale(class_names), title="class"),
        tooltip=["point:N", "cls:N", alt.Tooltip("u:Q", format=".3f"), alt.Tooltip("v:Q", format=".3f")],
    )
    line = alt.Chart(alt.NamedData(LINE)).mark_line(color="black", strokeDash=[6, 4], strokeWidth=2).encode(
        x="u:Q", y="v:Q")
    layers = [line, dots]
    if labelled:
        layers.append(alt.Chart(alt.NamedData(HIDDEN)).mark_text(align="left", dx=9, fontSize=11).encode(
            x="u:Q", y="v:Q", text="text:N"))
    return alt.layer(*layers).properties(width=size, height=size)


def _epoch_rule() -> alt.Chart:
    return alt.Chart(alt.NamedData(EPOCH)).mark_rule(color="black", strokeDash=[4, 3]).encode(x="epoch:Q")


def loss_chart(*, log: bool = True, height: int = 220) -> alt.LayerChart:
    """Loss after each epoch (LOSSES: epoch, loss), with a rule at the epoch being shown (EPOCH)."""
    y_scale = alt.Scale(type="log") if log else alt.Scale(zero=True)
    line = alt.Chart(alt.NamedData(LOSSES)).mark_line(color="#5b4bd5").encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("loss:Q", title="loss", scale=y_scale),
        tooltip=["epoch:Q", alt.Tooltip("loss:Q", format=".5f")],
    )
    return alt.layer(line, _epoch_rule()).properties(height=height)


def trajectory_chart(*, many: bool, height: int = 260) -> alt.LayerChart:
    """Each weight's value over the saved snapshots (TRAJECTORY: epoch, value, name), with a rule at
    the epoch shown; `many` (over 12 weights) drops the legend."""
    lines = alt.Chart(alt.NamedData(TRAJECTORY)).mark_line(strokeWidth=1.5).encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("value:Q", title="weight value"),
        color=alt.Color("name:N", title="weight", sort=None, scale=alt.Scale(scheme="tableau10"),
                        legend=None if many else alt.Legend(columns=2)),
        tooltip=["name:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")],
    )
    return alt.layer(lines, _epoch_rule()).properties(height=height)


BUILDERS: dict[str, Callable[..., alt.TopLevelMixin]] = {
    "boundary": boundary_chart, "units": unit_maps_chart, "network": network_chart,
    "hidden": hidden_space_chart, "loss": loss_chart, "trajectory": trajectory_chart,
}


def spec(chart: alt.TopLevelMixin) -> dict:
    """A chart's Vega-Lite spec, as Streamlit would send it (without Altair's default view size)."""
    out = chart.to_dict()
    view = out.get("config", {}).get("view", {})
    for key in ("continuousWidth", "continuousHeight"):
        view.pop(key, None)
    if "config" in out and not view:
        out["config"].pop("view", None)
        if not out["config"]:
            del out["config"]
    return out


@functools.lru_cache(maxsize=128)
def template(name: str, *args, **kwargs) -> dict:
    """The spec of BUILDERS[name](*args, **kwargs), built once per layout (arguments must be hashable).
    Treat it as read-only: `fill` copies it."""
    return spec(BUILDERS[name](*args, **kwargs))


def fill(template_spec: dict, **datasets: pd.DataFrame) -> dict:
    """A copy of a template with its named datasets filled in (Streamlit sends them as Arrow)."""
    return {**template_spec, "datasets": dict(datasets)}
