"""Data frames for the Embeddings page's charts and tables (no st.* here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.interp.embeddings import geometry as E

# What the label picker assumes of the drawn scatter: the narrowest plot (at 1024 px wide) and the
# text size of a label, so labels kept apart here stay apart on screen.
PLOT_PX = (480, 420)  # width, height of the plotting area (the chart spans the page)
CHAR_PX, LINE_PX, DX_PX = 6.2, 12.0, 6.0  # one character of a 10 px label, a line, the offset
POINT_PX = 5.0  # a point's radius: no label may cover another point


def shown_token(token: str) -> str:
    """A token as it is, made visible: quoted, so ' Mary' (with its leading space) and 'Mary' differ."""
    return repr(token)


def neighbour_frame(tokens: list[str], found: E.Neighbours) -> pd.DataFrame:
    """token (quoted), cosine, one row per neighbour (tokens: the decoded neighbours, in order)."""
    return pd.DataFrame({"token": [shown_token(t) for t in tokens],
                         "cosine": np.round(np.asarray(found.similarity, dtype=float), 3)})


def space_twins(query: str, tokens: list[str]) -> list[str]:
    """Neighbours that are the query's own word, spelled with or without its leading space."""
    word = query.strip()
    return [t for t in tokens if t != query and t.strip() == word]


def label_subset(coords: np.ndarray, tokens: list[str], labels: list[str]) -> np.ndarray:
    """Which points get a written label so that no two labels overlap ([n] bool).

    Coordinates are mapped to the smallest plot (PLOT_PX); each label is a box right of its point.
    Greedy: first the point nearest each category's centre (so every category is named when it
    can be), then the rest in order; a label is kept only if its box overlaps no kept box and covers
    no other point."""
    n = len(coords)
    if n == 0:
        return np.zeros(0, dtype=bool)
    lo, hi = coords.min(0), coords.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    px = (coords - lo) / span * np.array(PLOT_PX)  # [n, 2], y grows upwards
    width = np.array([len(t.strip()) * CHAR_PX for t in tokens])
    boxes = np.stack([px[:, 0] + DX_PX, px[:, 1] - LINE_PX / 2, px[:, 0] + DX_PX + width,
                      px[:, 1] + LINE_PX / 2], axis=1)  # [n, 4]: x0, y0, x1, y1
    labels_arr = np.asarray(labels)
    first = []
    for category in dict.fromkeys(labels):
        members = np.flatnonzero(labels_arr == category)
        centre = px[members].mean(0)
        first.append(int(members[np.argmin(((px[members] - centre) ** 2).sum(1))]))
    order = first + [i for i in range(n) if i not in set(first)]
    keep = np.zeros(n, dtype=bool)
    for i in order:
        kept = boxes[keep]
        overlaps = ((kept[:, 0] < boxes[i, 2]) & (boxes[i, 0] < kept[:, 2])
                    & (kept[:, 1] < boxes[i, 3]) & (boxes[i, 1] < kept[:, 3]))
        near = np.abs(px - [(boxes[i, 0] + boxes[i, 2]) / 2, px[i, 1]])  # [n, 2] from the box's centre
        covers = ((near[:, 0] <= (boxes[i, 2] - boxes[i, 0]) / 2 + POINT_PX)
                  & (near[:, 1] <= LINE_PX / 2 + POINT_PX))
        covers[i] = False
        if not overlaps.any() and not covers.any():
            keep[i] = True
    return keep


def scatter_frame(tokens: E.TokenSet, projection: E.Projection, with_labels: bool) -> pd.DataFrame:
    """x, y, token, category, and `label`: the token's text where it is written, else empty."""
    coords = np.asarray(projection.coords, dtype=float)
    shown = (label_subset(coords, list(tokens.tokens), list(tokens.labels)) if with_labels
             else np.zeros(len(coords), dtype=bool))
    written = [t.strip() if s else "" for t, s in zip(tokens.tokens, shown, strict=True)]
    return pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "token": list(tokens.tokens),
                         "category": list(tokens.labels), "label": written})
