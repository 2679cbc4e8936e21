"""Data frames for the XOR page's charts and tables, built from core.scratch results (no st.* here).

Every frame is finite: values that are not (a run's last weights can be huge) are dropped, never
drawn as NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.scratch.data import Dataset
from core.scratch.mlp import Architecture, param_names, unflatten
from core.scratch.trace import Trace, unit_name
from core.scratch.train import TrainResult
from core.scratch.views import Grid, HiddenSpace


def cells_frame(grid: Grid, values: np.ndarray) -> pd.DataFrame:
    """One rectangle per grid cell: x, x2, y, y2, value."""
    dx, dy = grid.step[0] / 2, grid.step[1] / 2
    frame = pd.DataFrame({"x": grid.points[:, 0] - dx, "x2": grid.points[:, 0] + dx,
                          "y": grid.points[:, 1] - dy, "y2": grid.points[:, 1] + dy, "value": values})
    return frame[np.isfinite(frame["value"])]


def points_frame(data: Dataset, p: np.ndarray) -> pd.DataFrame:
    """The data: x1, x2, its class name, the network's p and whether it is on the right side."""
    right = (p > 0.5) == (data.y > 0.5)
    return pd.DataFrame({"x1": data.X[:, 0], "x2": data.X[:, 1], "cls": _class_names(data), "p": p,
                         "result": np.where(right, "right", "wrong")})


def _class_names(data: Dataset) -> list[str]:
    return [data.class_names[int(c)] for c in data.y]


def units_frame(grid: Grid, hidden: tuple[np.ndarray, ...], arch: Architecture, data: Dataset,
                data_acts: tuple[np.ndarray, ...]) -> pd.DataFrame:
    """Every hidden unit's activation over the grid (kind "cell") and at the data points ("point")."""
    cells = cells_frame(grid, np.zeros(len(grid.points)))
    frames = []
    for l, (acts, at_data) in enumerate(zip(hidden, data_acts, strict=True), start=1):
        for j in range(acts.shape[1]):
            name = unit_name(arch, l, j + 1)
            frames.append(cells.assign(kind="cell", unit=name, value=acts[:, j]))
            frames.append(pd.DataFrame({"kind": "point", "unit": name, "x": data.X[:, 0], "x2": data.X[:, 0],
                                        "y": data.X[:, 1], "y2": data.X[:, 1], "value": at_data[:, j]}))
    frame = pd.concat(frames, ignore_index=True)
    return frame[np.isfinite(frame["value"])]


def network_frames(arch: Architecture, theta: np.ndarray, edge_values: np.ndarray | None = None,
                   node_text: dict[str, str] | None = None,
                   node_info: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes (px = layer, py = position in the layer) and edges (one per weight, biases left out).

    edge_values defaults to the weights; pass gradients (in theta's layout) to draw those instead."""
    values = theta if edge_values is None else edge_values
    names = param_names(arch.sizes)
    node_rows = []
    for l, n in enumerate(arch.sizes):
        for j in range(n):
            name = unit_name(arch, l, j + 1)
            row = {"name": name, "px": float(l), "py": (n - 1) / 2 - j}
            row["label"] = (node_text or {}).get(name, name)
            row["info"] = (node_info or {}).get(name, "")
            node_rows.append(row)
    nodes = pd.DataFrame(node_rows)
    where = {r["name"]: (r["px"], r["py"]) for r in node_rows}
    edge_rows, at = [], 0
    for l, (W, _b) in enumerate(unflatten(theta, arch.sizes), start=1):
        n_in, n_out = W.shape
        for i in range(n_in):
            for j in range(n_out):
                (x0, y0), (x1, y1) = where[unit_name(arch, l - 1, i + 1)], where[unit_name(arch, l, j + 1)]
                edge_rows.append({"px": x0, "py": y0, "px2": x1, "py2": y1, "name": names[at],
                                  "value": float(values[at])})
                at += 1
        at += n_out  # skip the biases
    edges = pd.DataFrame(edge_rows)
    edges = edges[np.isfinite(edges["value"])]
    return nodes, edges.assign(magnitude=edges["value"].abs())


def loss_frame(result: TrainResult, max_points: int = 800) -> pd.DataFrame:
    """The loss curve, thinned to at most max_points (always keeping the first and last epoch)."""
    n = min(max_points, result.epochs_run + 1)
    epochs = np.unique(np.linspace(0, result.epochs_run, n).round().astype(int))
    frame = pd.DataFrame({"epoch": epochs, "loss": result.losses[epochs]})
    return frame[np.isfinite(frame["loss"]) & (frame["loss"] > 0)]


def trajectory_frame(result: TrainResult, layer: int) -> pd.DataFrame:
    """Every weight and bias of one weight layer (from 1) at every snapshot: epoch, name, value."""
    names = np.array(param_names(result.arch.sizes))
    keep = np.array([n.startswith((f"W{layer}[", f"b{layer}[")) for n in names])
    values = result.snapshots[:, keep]  # [n_snap, n_kept]
    frame = pd.DataFrame({
        "epoch": np.repeat(result.snapshot_epochs, keep.sum()),
        "name": np.tile(names[keep], len(result.snapshot_epochs)),
        "value": values.ravel(),
    })
    return frame[np.isfinite(frame["value"])]


def hidden_frames(space: HiddenSpace, data: Dataset, max_labels: int = 16) -> tuple[pd.DataFrame,
                                                                                   pd.DataFrame | None]:
    """Points (u, v, cls, point) and the boundary segment; with few points, a `text` column names
    them, points that landed on the same spot sharing one label ("(0, 0) & (1, 1)")."""
    labels = [f"({a:.2g}, {b:.2g})" for a, b in data.X]
    points = pd.DataFrame({"u": space.u, "v": space.v, "cls": _class_names(data), "point": labels})
    points = points[np.isfinite(points["u"]) & np.isfinite(points["v"])]
    if len(points) <= max_labels:
        uv = points[["u", "v"]].to_numpy()
        near = 0.04 * max(float(np.ptp(uv[:, 0])), float(np.ptp(uv[:, 1])), 1e-9)
        text = list(points["point"])
        for i in range(len(uv)):
            for j in range(i):
                if text[j] and np.abs(uv[i] - uv[j]).max() <= near:  # same spot: one shared label
                    text[j], text[i] = f"{text[j]} & {text[i]}", ""
                    break
        points = points.assign(text=text)
    line = None if space.line is None else pd.DataFrame(space.line, columns=["u", "v"])
    return points, line


def trace_frames(trace: Trace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables: every unit (forward and backward numbers) and every weight (gradient, update)."""
    units = pd.DataFrame([{
        "unit": u.name, "layer": u.layer, "z (pre-activation)": u.z, "a (activation)": u.a,
        "f'(z)": u.slope, "dL/da": u.dL_da, "delta = dL/dz": u.delta,
    } for u in trace.units])
    weights = pd.DataFrame([{
        "weight": w.name, "from": w.src, "to": w.dst, "value": w.value, "input a": w.a_in,
        "delta of 'to'": w.delta_out, "dL/dw = a x delta": w.grad,
        f"new value (w - {trace.lr:g} dL/dw)": w.new_value,
    } for w in trace.weights])
    return units, weights
