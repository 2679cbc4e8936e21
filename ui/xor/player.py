"""The XOR page's replay of training: a scrub slider over the saved snapshots, play / pause / step
buttons, and every picture drawn for the epoch being shown.

It is one st.fragment: scrubbing or stepping redraws only the pictures, and while playing the
fragment reruns itself on a timer (run_every), advancing one frame each time.
"""

from __future__ import annotations

import streamlit as st

from core.scratch.data import Dataset
from core.scratch.mlp import forward
from core.scratch.train import TrainResult
from core.scratch.views import grid_view, hidden_space, make_grid
from ui.xor import charts, frames
from ui.xor.trace import backprop_section

EPOCH_KEY = "xor_epoch"
PLAY_KEY = "xor_playing"
RUN_KEY = "xor_player_run"
TICK_S = 0.35
FRAMES = 30  # a full replay takes about FRAMES ticks


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


def _pictures(data: Dataset, result: TrainResult, epoch: int) -> None:
    arch, theta = result.arch, result.snapshots[result.snapshot_index(epoch)]
    names = list(data.class_names)
    p = forward(theta, arch, data.X).p
    acc = float(((p > 0.5) == (data.y > 0.5)).mean())
    grid = make_grid(data.X, n=60)
    view = grid_view(theta, arch, grid)
    st.caption(f"Epoch {epoch:,}: loss {result.losses[epoch]:.4g}, {acc:.0%} of points right.")
    boundary, network = st.columns([1, 1])
    with boundary:
        st.markdown("**Decision boundary.** Colour is the network's p(class 1); white is the boundary, "
                    "p = 0.5. A cross marks a point on the wrong side.")
        cells, points = frames.cells_frame(grid, view.p), frames.points_frame(data, p)
        size = 220 if data.n <= 16 else 45 if data.n <= 400 else 20
        st.altair_chart(charts.boundary_chart(cells, points, names, point_size=size),
                        key="xor_boundary_chart")
    with network:
        st.markdown("**The network.** Line width is a weight's size, green positive, purple negative. "
                    "Hover for values.")
        nodes, edges = frames.network_frames(arch, theta)
        top = float(abs(result.snapshots).max())  # one scale for the whole run: watch the weights grow
        st.altair_chart(charts.network_chart(nodes, edges, top=top, height=max(320, 22 * max(arch.sizes))),
                        key="xor_network_chart")
    coarse = make_grid(data.X, n=28)
    coarse_view = grid_view(theta, arch, coarse)
    data_acts = forward(theta, arch, data.X).acts[1:-1]
    domain = {"tanh": [-1.0, 1.0], "sigmoid": [0.0, 1.0]}.get(
        arch.activation, [0.0, max(1e-6, max(float(a.max()) for a in coarse_view.hidden))])
    st.markdown("**What each hidden unit learned.** Each panel is one unit's activation over the same plane; "
                "the white band is where it switches. First-layer units can only draw a straight line; "
                "the output combines them.")
    units = frames.units_frame(coarse, coarse_view.hidden, arch, data, data_acts)
    columns = min(8, max(arch.sizes[1:-1]))
    st.altair_chart(charts.unit_maps_chart(units, domain, columns=columns, size=min(130, 840 // columns - 22),
                                           dot_size=14 if data.n <= 16 else 6), key="xor_units_chart")
    space, losses = st.columns([1, 1])
    with space:
        hs = hidden_space(theta, arch, data.X, data.y)
        st.markdown("**The data as the output unit sees it.** Each point at its last-hidden-layer "
                    "activations. The dashed line is the output unit's boundary: "
                    + ("one straight line now separates the classes." if hs.separated
                       else "not every point is on its side yet."))
        pts, line = frames.hidden_frames(hs, data)
        st.altair_chart(charts.hidden_space_chart(pts, line, names, u_label=hs.u_label, v_label=hs.v_label),
                        key="xor_hidden_chart")
    with losses:
        st.markdown("**Loss curve** (log scale); the dashed line is the epoch shown.")
        st.altair_chart(charts.loss_chart(frames.loss_frame(result), epoch), key="xor_loss_chart")
        layer = st.segmented_control("Weight trajectories of", list(range(1, arch.n_layers + 1)), default=1,
                                     format_func=lambda l: f"layer {l} (W{l}, b{l})", required=True,
                                     key="xor_traj_layer")
        st.altair_chart(charts.trajectory_chart(frames.trajectory_frame(result, layer), epoch),
                        key="xor_traj_chart")
    backprop_section(data, result, theta, epoch)


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
        _pictures(data, result, int(st.session_state[EPOCH_KEY]))

    frame()
