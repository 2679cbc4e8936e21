"""The XOR page's replay of training: a scrub slider over the saved snapshots, play / pause / step
buttons, and every picture drawn for the epoch being shown.

It is one st.fragment: scrubbing or stepping redraws only the pictures, and while playing the
fragment reruns itself on a timer (run_every), advancing one frame each time. A frame must cost
less than the tick, so each chart's spec is built once per run (ui.xor.charts.template) and a frame
only sends new data: the browser then updates the charts in place instead of building them again.

Between frames, Streamlit's full garbage collection after every run took 0.7 to 1.2 s here until the
long-lived objects were frozen out of it (ui.common.runtime.freeze_long_lived).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.scratch.data import Dataset
from core.scratch.mlp import forward
from core.scratch.train import TrainResult
from core.scratch.views import grid_view, hidden_space, make_grid
from ui.common.runtime import freeze_long_lived
from ui.xor import charts, frames
from ui.xor.trace import backprop_section

EPOCH_KEY = "xor_epoch"
PLAY_KEY = "xor_playing"
RUN_KEY = "xor_player_run"
TOP_KEY = "xor_unit_top"  # (run key, the largest ReLU activation over the run's snapshots)
TICK_S = 0.35
FRAMES = 30  # a full replay takes about FRAMES ticks
FINE, COARSE = 60, 28  # grid cells per side: the decision boundary, each hidden unit
freeze_long_lived()  # normally done by app.py after the first run; here too for the player


def show(name: str, key: str, datasets: dict, *layout, **options) -> None:
    """Draw chart `name` with this frame's named datasets; its spec is built once per layout
    (ui.xor.charts.template(name, *layout, **options), which must be hashable)."""
    st.vega_lite_chart(charts.fill(charts.template(name, *layout, **options), **datasets), key=key)


def _move(epochs: list[int], to: str) -> None:
    i = epochs.index(st.session_state.get(EPOCH_KEY, epochs[-1]))
    hop = max(1, len(epochs) // FRAMES)
    target = {"start": 0, "back": i - 1, "next": i + 1, "end": len(epochs) - 1, "tick": i + hop}[to]
    st.session_state[EPOCH_KEY] = epochs[min(max(target, 0), len(epochs) - 1)]
    if to != "tick":
        st.session_state[PLAY_KEY] = False


def _toggle_play(epochs: list[int]) -> None:
    playing = not st.session_state.get(PLAY_KEY, False)
    if playing and st.session_state.get(EPOCH_KEY) == epochs[-1]:
        st.session_state[EPOCH_KEY] = epochs[0]  # replay from the start
    st.session_state[PLAY_KEY] = playing


def _buttons(epochs: list[int], playing: bool) -> None:
    cols = st.columns([1, 1, 1.4, 1, 1, 8], vertical_alignment="bottom")
    steps = [("start", ":material/first_page:", "First epoch"),
             ("back", ":material/chevron_left:", "Step back"), None,
             ("next", ":material/chevron_right:", "Step on"), ("end", ":material/last_page:", "Last epoch")]
    for col, step in zip(cols, steps, strict=False):
        if step is None:
            col.button("Pause" if playing else "Play", key="xor_play", type="primary", on_click=_toggle_play,
                       args=(epochs,), icon=":material/pause:" if playing else ":material/play_arrow:")
        else:
            to, icon, tip = step
            col.button("", icon=icon, key=f"xor_{to}", help=tip, on_click=_move, args=(epochs, to))
    cols[5].select_slider("Training epoch shown", epochs, key=EPOCH_KEY,
                          help="Scrub through training: every picture shows the weights after this epoch.")


def _unit_domain(result: TrainResult, run_key: str, coarse) -> tuple[float, float]:
    """The colour range of the hidden-unit maps, fixed for the whole run (so colours mean the same
    in every frame): [-1, 1] for tanh, [0, 1] for sigmoid, [0, largest activation] for ReLU."""
    if result.arch.activation != "relu":
        return {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}[result.arch.activation]
    cached = st.session_state.get(TOP_KEY)
    if not cached or cached[0] != run_key:
        tops = [max(float(np.max(h, initial=0.0)) for h in grid_view(t, result.arch, coarse).hidden)
                for t in result.snapshots]
        top = max(tops)
        cached = (run_key, top if np.isfinite(top) and top > 1e-6 else 1.0)
        st.session_state[TOP_KEY] = cached
    return 0.0, float(cached[1])


def _pictures(data: Dataset, result: TrainResult, epoch: int, run_key: str) -> None:
    arch, theta = result.arch, result.snapshots[result.snapshot_index(epoch)]
    names = tuple(data.class_names)
    p = forward(theta, arch, data.X).p
    acc = float(((p > 0.5) == (data.y > 0.5)).mean())
    grid = make_grid(data.X, n=FINE)
    view = grid_view(theta, arch, grid)
    st.caption(f"Epoch {epoch:,}: loss {result.losses[epoch]:.4g}, {acc:.0%} of points right.")
    boundary, network = st.columns([1, 1])
    with boundary:
        st.markdown("**Decision boundary.** Colour is the network's p(class 1); white is the boundary, "
                    "p = 0.5. A cross marks a point on the wrong side.")
        cells = frames.boundary_frame(grid, view.p)
        size = 220 if data.n <= 16 else 45 if data.n <= 400 else 20
        domains = ((float(grid.xs[0] - grid.step[0] / 2), float(grid.xs[-1] + grid.step[0] / 2)),
                   (float(grid.ys[0] - grid.step[1] / 2), float(grid.ys[-1] + grid.step[1] / 2)))
        show("boundary", "xor_boundary_chart",
             {charts.CELLS: cells, charts.POINTS: frames.points_frame(data, p)}, names, *domains,
             point_size=size)
    with network:
        st.markdown("**The network.** Line width is a weight's size, green positive, purple negative. "
                    "Hover for values.")
        nodes, edges = frames.network_frames(arch, theta)
        top = float(abs(result.snapshots).max())  # one scale for the whole run: watch the weights grow
        show("network", "xor_network_chart", {charts.NODES: nodes, charts.EDGES: edges},
             frames.network_extent(arch), top=top, height=max(320, 22 * max(arch.sizes)))
    coarse = make_grid(data.X, n=COARSE)
    coarse_view = grid_view(theta, arch, coarse)
    data_acts = forward(theta, arch, data.X).acts[1:-1]
    st.markdown("**What each hidden unit learned.** Each panel is one unit's activation over the same plane; "
                "the white band is where it switches. First-layer units can only draw a straight line; "
                "the output combines them.")
    domain = _unit_domain(result, run_key, coarse)
    units = frames.units_frame(coarse, coarse_view.hidden, arch, data, data_acts, domain,
                               tuple(charts.WEIGHT_SCHEME))
    columns = min(8, max(arch.sizes[1:-1]))
    show("units", "xor_units_chart", {charts.UNITS: units}, tuple(dict.fromkeys(units["unit"])), domain,
         columns=columns, size=min(130, 840 // columns - 22), dot_size=14 if data.n <= 16 else 6)
    space, losses = st.columns([1, 1])
    with space:
        hs = hidden_space(theta, arch, data.X, data.y)
        st.markdown("**The data as the output unit sees it.** Each point at its last-hidden-layer "
                    "activations. The dashed line is the output unit's boundary: "
                    + ("one straight line now separates the classes." if hs.separated
                       else "not every point is on its side yet."))
        pts, line = frames.hidden_frames(hs, data)
        show("hidden", "xor_hidden_chart", {charts.HIDDEN: pts, charts.LINE: line}, names,
             u_label=hs.u_label, v_label=hs.v_label, labelled="text" in pts.columns)
    with losses:
        st.markdown("**Loss curve** (log scale); the dashed line is the epoch shown.")
        show("loss", "xor_loss_chart", {charts.LOSSES: frames.loss_frame(result),
                                        charts.EPOCH: frames.epoch_frame(epoch)})
        layer = st.segmented_control("Weight trajectories of", list(range(1, arch.n_layers + 1)), default=1,
                                     format_func=lambda l: f"layer {l} (W{l}, b{l})", required=True,
                                     key="xor_traj_layer", bind="query-params")
        layer = layer if layer in range(1, arch.n_layers + 1) else 1  # an empty value in a link clears it
        trajectory = frames.trajectory_frame(result, layer)
        show("trajectory", "xor_traj_chart",
             {charts.TRAJECTORY: trajectory, charts.EPOCH: frames.epoch_frame(epoch)},
             many=trajectory["name"].nunique() > 12)
    backprop_section(data, result, theta, epoch, run_key)


def player(data: Dataset, result: TrainResult, run_key: str) -> None:
    """Replay `result` (a finished run on `data`); a new run starts shown at its last epoch."""
    epochs = [int(e) for e in result.snapshot_epochs]
    if st.session_state.get(RUN_KEY) != run_key or st.session_state.get(EPOCH_KEY) not in epochs:
        st.session_state[RUN_KEY] = run_key
        st.session_state[EPOCH_KEY] = epochs[-1]
        st.session_state[PLAY_KEY] = False
    playing = bool(st.session_state.get(PLAY_KEY, False))

    @st.fragment(run_every=TICK_S if playing else None)
    def frame() -> None:
        now = bool(st.session_state.get(PLAY_KEY, False))
        if now != playing:
            st.rerun()  # start or stop the timer, which is set when the fragment is created
        if now:
            if st.session_state[EPOCH_KEY] == epochs[-1]:
                st.session_state[PLAY_KEY] = False
                st.rerun()
            _move(epochs, "tick")
        _buttons(epochs, now)
        _pictures(data, result, int(st.session_state[EPOCH_KEY]), run_key)

    frame()
