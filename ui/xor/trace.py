"""The XOR page's "backprop, step by step" section: one example, every number, as a graph and tables."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.scratch.data import Dataset
from core.scratch.mlp import loss_and_grad
from core.scratch.trace import Trace, trace_example
from core.scratch.train import TrainResult
from ui.xor import charts
from ui.xor.frames import edge_labels_frame, network_extent, network_frames, trace_frames

MAX_LABELLED = 6  # draw the numbers on the graph's nodes when no layer is wider than this
GRAPH_WIDTH, GRAPH_HEIGHT = 620, 380
TOP_KEY = "xor_gradient_top"  # ((run key, example), the largest |dL/dw| of that example over the run)


def _node_text(trace: Trace, labelled: bool) -> tuple[dict[str, str], dict[str, str]]:
    """Numbers drawn under each node (when labelled) and shown on hover."""
    text, info = {}, {}
    for u in trace.units:
        if u.z is None:
            text[u.name] = info[u.name] = f"= {u.a:.4g}"
            continue
        a = "p" if u.name == "out" else "a"
        text[u.name] = f"z {u.z:.3g}\n{a} {u.a:.3g}\nδ {u.delta:.3g}" if labelled else ""
        info[u.name] = f"z = {u.z:.5g}, {a} = {u.a:.5g}, δ = dL/dz = {u.delta:.5g}"
    return text, info


def _example_picker(data: Dataset) -> int:
    def describe(i: int) -> str:
        x1, x2 = data.X[i]
        return f"#{i + 1}: x = ({x1:.2f}, {x2:.2f}), class {data.class_names[int(data.y[i])]}"

    if data.n <= 50:
        return st.selectbox("Example", range(data.n), index=min(1, data.n - 1), format_func=describe,
                            key="xor_example", bind="query-params")
    i = st.number_input(f"Example (1 to {data.n:,})", 1, data.n, 1, key="xor_example_no",
                        bind="query-params") - 1
    st.caption(describe(i))
    return int(i)


def _gradient_top(result: TrainResult, data: Dataset, i: int, run_key: str) -> float:
    """The largest |dL/dw| of example i over the whole run: one scale for every frame, so the lines
    visibly thin as the network learns (and the chart is updated in place, not rebuilt)."""
    key = (run_key, i)
    cached = st.session_state.get(TOP_KEY)
    if not cached or cached[0] != key:
        x, y = data.X[i : i + 1], data.y[i : i + 1]
        with np.errstate(all="ignore"):
            tops = [np.abs(loss_and_grad(t, result.arch, x, y)[1]).max() for t in result.snapshots]
        top = float(np.nanmax(tops)) if len(tops) else 1.0
        cached = (key, top if np.isfinite(top) and top > 0 else 1.0)
        st.session_state[TOP_KEY] = cached
    return float(cached[1])


def backprop_section(data: Dataset, result: TrainResult, theta: np.ndarray, epoch: int, run_key: str) -> None:
    st.subheader("Backprop, step by step", anchor="backprop")
    st.markdown("One example through the network at this epoch's weights: the **forward pass** computes "
                "each unit's z and activation, the **backward pass** carries δ = dL/dz back down, and every "
                "weight's gradient is *its input × the δ of the unit it feeds*. Scrub the epoch above to "
                "watch the gradients shrink as the network learns.")
    pick, summary = st.columns([1, 2])
    with pick:
        i = _example_picker(data)
    arch, lr = result.arch, result.config.lr
    trace = trace_example(theta, arch, data.X[i], float(data.y[i]), lr)
    loss_name = "cross-entropy" if trace.loss_name == "bce" else "squared error"
    with summary:
        st.markdown(f"Forward: p = **{trace.p:.4f}** for a point of class {data.class_names[int(trace.y)]} "
                    f"(y = {trace.y:g}); {loss_name} loss **{trace.loss:.5g}**.  \n"
                    f"Backward: dL/dp = {trace.dL_dp:.5g}; the output's δ = dL/dp × p(1 − p) = "
                    f"**{trace.units[-1].delta:.5g}**.  \n"
                    f"Update (plain SGD, lr {lr:g}, this example alone): its loss goes from {trace.loss:.5g} "
                    f"to **{trace.loss_after:.5g}**.")
    graph, units, weights = st.tabs(["Computation graph", "Every unit", "Every weight: gradient and update"])
    units_df, weights_df = trace_frames(trace)
    with graph:
        labelled = max(arch.sizes) <= MAX_LABELLED
        text, info = _node_text(trace, labelled)
        nodes, edges = network_frames(arch, theta, edge_values=trace.gradient(), node_text=text,
                                      node_info=info)
        st.caption("Lines are the gradients dL/dw (width = size, green = positive, so the update will "
                   "*lower* that weight); each number sits beside its own line. Each node shows z, its "
                   "activation and δ" + ("." if labelled else ": hover a node for its numbers."))
        extent = network_extent(arch)
        datasets = {charts.NODES: nodes, charts.EDGES: edges}
        if labelled:
            datasets[charts.EDGE_LABELS] = edge_labels_frame(edges, extent, GRAPH_WIDTH, GRAPH_HEIGHT)
        top = _gradient_top(result, data, i, run_key)
        st.vega_lite_chart(charts.fill(charts.template(
            "network", extent, top=top, value_title="dL/dw", width=GRAPH_WIDTH, height=GRAPH_HEIGHT,
            detail=labelled, node_info=True), **datasets), key="xor_trace_graph")
    with units:
        st.caption("Forward: z = b + Σ a·w, a = f(z). Backward: dL/da = Σ w·δ over the units it feeds, "
                   "δ = f'(z) · dL/da.")
        st.dataframe(units_df, hide_index=True, key="xor_trace_units", column_config=_numbers(units_df, 2))
    with weights:
        other = "" if result.config.optimizer == "sgd" else (
            f"; {result.config.optimizer.capitalize()} would rescale each step using its running averages")
        st.caption("dL/dw = (input a) × (δ of the unit the weight feeds); a bias's input is 1. The new value "
                   f"is one plain SGD step with lr {lr:g}{other}.")
        st.dataframe(weights_df, hide_index=True, key="xor_trace_weights",
                     column_config=_numbers(weights_df, 3))


def _numbers(frame, first: int) -> dict:
    """Five significant digits for every numeric column from `first` on (cheaper than a Styler)."""
    return {c: st.column_config.NumberColumn(format="%.5g") for c in frame.columns[first:]}
