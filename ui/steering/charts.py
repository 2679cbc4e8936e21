"""Altair charts for the steering page: data frames in, charts out (frames from ui.steering.views)."""

from __future__ import annotations

import altair as alt
import pandas as pd

CONTROL_COLORS = {"steering vector": "#5b4bd5", "opposite sign": "#e8843c", "random, same norm": "#9a9a9a"}
METRIC_ORDER = ["P(+ words)", "P(- words)", "logit difference (+ minus -)",
                "perplexity of the steered text"]


def effect_chart(frame: pd.DataFrame, coefficient: float, *, order: list[str] | None = None,
                 width: int = 330, height: int = 170) -> alt.ConcatChart:
    """One small chart per metric: value against coefficient, a line per control, a dashed rule at
    the current coefficient. Probabilities are drawn on 0-1; perplexity gets a log scale (a hard push
    can send it up a thousandfold).

    frame: columns control, coefficient, metric, value; order: the metrics, in reading order.
    """
    colors = alt.Scale(domain=list(CONTROL_COLORS), range=list(CONTROL_COLORS.values()))
    dashes = alt.Scale(domain=list(CONTROL_COLORS), range=[[1, 0], [6, 3], [2, 2]])
    charts = []
    for i, metric in enumerate(order or METRIC_ORDER):
        data = frame[frame["metric"] == metric]
        if data.empty:
            continue
        log, prob = metric.startswith("perplexity"), metric.startswith("P(")
        y_scale = (alt.Scale(type="log") if log else alt.Scale(domain=[0, 1]) if prob
                   else alt.Scale(zero=False))
        lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=28)).encode(
            x=alt.X("coefficient:Q", title="coefficient"),
            y=alt.Y("value:Q", title=None, scale=y_scale,
                    axis=alt.Axis(format="%" if metric.startswith("P(") else "~s",
                                  values=[10.0 ** k for k in range(7)] if log else alt.Undefined)),
            color=alt.Color("control:N", scale=colors, title=None,
                            legend=alt.Legend(orient="top", symbolType="stroke", symbolStrokeWidth=3)
                            if i == 0 else None),
            strokeDash=alt.StrokeDash("control:N", scale=dashes, legend=None),
            tooltip=["control:N", alt.Tooltip("coefficient:Q", format="+.1f"),
                     alt.Tooltip("value:Q", format=".4g", title=metric)],
        )
        rule = alt.Chart(pd.DataFrame({"c": [float(coefficient)]})).mark_rule(
            color="black", strokeDash=[4, 3], opacity=0.6).encode(x="c:Q")
        charts.append(alt.layer(lines, rule).properties(width=width, height=height, title=metric))
    return alt.concat(*charts, columns=2).resolve_scale(color="shared", strokeDash="shared")


def sweep_heatmap(frame: pd.DataFrame, layer: str | None, coefficient: float, *, title: str,
                  width: int = 560, cell_height: int = 34) -> alt.LayerChart:
    """Layer x coefficient map of the effect (diverging around 0), the current setting outlined.

    frame: columns layer (labels "embed", "0", "1", ... in model order), coefficient, effect (plus
    any extra columns shown in the tooltip); layer: the label of the row to outline.
    """
    limit = max(1e-9, float(frame["effect"].abs().max()))
    coefs = sorted(frame["coefficient"].unique())
    x = alt.X("coefficient:O", title="coefficient", sort=coefs,
              axis=alt.Axis(labelAngle=0, format="+.1f"))
    y = alt.Y("layer:O", title="layer (the stream after it)", sort=list(dict.fromkeys(frame["layer"])))
    tooltip = [alt.Tooltip(c, format=".3f") if frame[c].dtype.kind == "f" else c
               for c in frame.columns]
    heat = alt.Chart(frame).mark_rect().encode(
        x=x, y=y, tooltip=tooltip,
        color=alt.Color("effect:Q", title=None,
                        scale=alt.Scale(scheme="redblue", domain=[-limit, limit], reverse=True)),
    )
    text = alt.Chart(frame).mark_text(fontSize=10).encode(
        x=x, y=y, text=alt.Text("effect:Q", format="+.2f"),
        color=alt.condition(f"abs(datum.effect) > {0.6 * limit}", alt.value("white"), alt.value("black")),
    )
    layers = [heat, text]
    nearest = min(coefs, key=lambda c: abs(c - coefficient))
    if layer is not None:
        mark = pd.DataFrame({"layer": [layer], "coefficient": [nearest]})
        layers.append(alt.Chart(mark).mark_rect(fill=None, stroke="black", strokeWidth=2).encode(x=x, y=y))
    # a Step height: Streamlit shrinks a fixed pixel height of an ordinal axis
    return alt.layer(*layers).properties(width=width, height=alt.Step(cell_height), title=title)
