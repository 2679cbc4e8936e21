"""Data frames for the XOR page's charts and tables, built from core.scratch results (no st.* here).

Every frame is finite: values that are not (a run's last weights can be huge) are dropped, never
drawn as NaN.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from PIL import Image

from core.scratch.data import Dataset
from core.scratch.mlp import Architecture, param_names, unflatten
from core.scratch.trace import Trace, unit_name
from core.scratch.train import TrainResult
from core.scratch.views import Grid, HiddenSpace
from ui.xor.charts import LABEL_AT, LABEL_OFFSET_PX, P_COLOURS, P_STOPS, network_domains


def _hex(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def colours(values: np.ndarray, stops: tuple[float, ...], palette: tuple[str, ...]) -> np.ndarray:
    """values [...] -> RGB [..., 3] uint8, linear between the palette's colours at the stops (as the
    charts' colour scales, interpolate="rgb"); values outside the stops take the end colours, NaN white."""
    rgb = np.stack([_hex(c) for c in palette])  # [n_stops, 3]
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=stops[len(stops) // 2])
    out = np.stack([np.interp(v, stops, rgb[:, c]) for c in range(3)], axis=-1)  # [..., 3]
    return out.round().astype(np.uint8)


def png_url(rgb: np.ndarray) -> str:
    """An RGB image [rows, cols, 3] (row 0 at the top) as a PNG data URL."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buffer, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def grid_image(grid: Grid, values: np.ndarray, stops: tuple[float, ...], palette: tuple[str, ...]) -> dict:
    """One picture of values over the grid (values in grid.points order: x1 fastest, from the
    bottom row up): its data-space box (x, x2, y, y2) and the PNG (url). One image instead of one
    rectangle per cell: the browser draws a single mark per frame."""
    ny, nx = len(grid.ys), len(grid.xs)
    image = colours(np.asarray(values).reshape(ny, nx)[::-1], stops, palette)  # [ny, nx, 3], top row first
    dx, dy = grid.step[0] / 2, grid.step[1] / 2
    return {"x": float(grid.xs[0] - dx), "x2": float(grid.xs[-1] + dx), "y": float(grid.ys[0] - dy),
            "y2": float(grid.ys[-1] + dy), "url": png_url(image)}


def boundary_frame(grid: Grid, p: np.ndarray) -> pd.DataFrame:
    """The decision boundary as one picture: p(class 1) over the grid, coloured like the chart's
    scale (class 0 blue, 0.5 white, class 1 orange); `value` feeds the colour legend."""
    return pd.DataFrame([{**grid_image(grid, p, P_STOPS, P_COLOURS), "value": 0.5}])


def points_frame(data: Dataset, p: np.ndarray) -> pd.DataFrame:
    """The data: x1, x2, its class name, the network's p and whether it is on the right side."""
    right = (p > 0.5) == (data.y > 0.5)
    return pd.DataFrame({"x1": data.X[:, 0], "x2": data.X[:, 1], "cls": _class_names(data), "p": p,
                         "result": np.where(right, "right", "wrong")})


def _class_names(data: Dataset) -> list[str]:
    return [data.class_names[int(c)] for c in data.y]


def units_frame(grid: Grid, hidden: tuple[np.ndarray, ...], arch: Architecture, data: Dataset,
                data_acts: tuple[np.ndarray, ...], domain: tuple[float, float],
                palette: tuple[str, str, str]) -> pd.DataFrame:
    """Every hidden unit's activation over the grid as one picture per unit (kind "image": x, x2,
    y, y2, url, coloured over `domain` with `palette` low / middle / high) and at the data points
    (kind "point": x, y, value)."""
    stops = (domain[0], (domain[0] + domain[1]) / 2, domain[1])
    frames = []
    for l, (acts, at_data) in enumerate(zip(hidden, data_acts, strict=True), start=1):
        for j in range(acts.shape[1]):
            name = unit_name(arch, l, j + 1)
            frames.append(pd.DataFrame([{"kind": "image", "unit": name, "value": stops[1],
                                         **grid_image(grid, acts[:, j], stops, palette)}]))
            frames.append(pd.DataFrame({"kind": "point", "unit": name, "x": data.X[:, 0], "x2": data.X[:, 0],
                                        "y": data.X[:, 1], "y2": data.X[:, 1], "value": at_data[:, j],
                                        "url": ""}))
    frame = pd.concat(frames, ignore_index=True)
    return frame[(frame["kind"] == "image") | np.isfinite(frame["value"])]


def network_extent(arch: Architecture) -> tuple[float, float, float, float]:
    """(min px, max px, min py, max py) of network_frames' nodes: layers at px = 0, 1, ..., units
    centred on py = 0."""
    widest = max(arch.sizes)
    return 0.0, float(len(arch.sizes) - 1), -(widest - 1) / 2, (widest - 1) / 2


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


def edge_labels_frame(edges: pd.DataFrame, extent: tuple[float, float, float, float], width: int,
                      height: int) -> pd.DataFrame:
    """Where each edge's number is written (tx, ty, text): LABEL_AT of the way along the edge, moved
    LABEL_OFFSET_PX pixels off it along its normal (towards the top of the picture), so the number
    sits beside its own line instead of under it. Pixels are converted with the chart's scales."""
    (x_lo, x_hi), (y_lo, y_hi) = network_domains(extent)
    kx, ky = width / (x_hi - x_lo), height / (y_hi - y_lo)  # pixels per data unit
    dx = (edges["px2"] - edges["px"]).to_numpy() * kx  # [edge] the edge's direction in pixels (y up)
    dy = (edges["py2"] - edges["py"]).to_numpy() * ky
    length = np.maximum(np.hypot(dx, dy), 1e-9)
    nx, ny = -dy / length, dx / length  # the normal; ny >= 0 for edges drawn left to right
    bx = edges["px"].to_numpy() + LABEL_AT * (edges["px2"] - edges["px"]).to_numpy()
    by = edges["py"].to_numpy() + LABEL_AT * (edges["py2"] - edges["py"]).to_numpy()
    return pd.DataFrame({"tx": bx + nx * LABEL_OFFSET_PX / kx, "ty": by + ny * LABEL_OFFSET_PX / ky,
                         "text": [f"{v + 0.0:.3g}" for v in edges["value"]],  # + 0.0: no "-0"
                         "name": edges["name"].to_numpy()})


def epoch_frame(epoch: int) -> pd.DataFrame:
    """The epoch shown, for the rule on the loss and trajectory charts."""
    return pd.DataFrame({"epoch": [int(epoch)]})


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
                                                                                   pd.DataFrame]:
    """Points (u, v, cls, point) and the boundary segment (u, v; empty when the line misses the
    picture); with at most max_labels points, a `text` column names them, points that landed on the
    same spot sharing one label ("(0, 0) & (1, 1)")."""
    labels = [f"({a:.2g}, {b:.2g})" for a, b in data.X]
    points = pd.DataFrame({"u": space.u, "v": space.v, "cls": _class_names(data), "point": labels})
    points = points[np.isfinite(points["u"]) & np.isfinite(points["v"])]
    if data.n <= max_labels:
        uv = points[["u", "v"]].to_numpy()
        near = 0.04 * max(float(np.ptp(uv[:, 0])) if len(uv) else 0.0,
                          float(np.ptp(uv[:, 1])) if len(uv) else 0.0, 1e-9)
        text = list(points["point"])
        for i in range(len(uv)):
            for j in range(i):
                if text[j] and np.abs(uv[i] - uv[j]).max() <= near:  # same spot: one shared label
                    text[j], text[i] = f"{text[j]} & {text[i]}", ""
                    break
        points = points.assign(text=text)
    line = pd.DataFrame(space.line if space.line is not None else [], columns=["u", "v"], dtype=float)
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
