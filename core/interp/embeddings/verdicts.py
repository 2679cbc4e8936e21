"""What the Embeddings page may say about a result: typed verdicts with named thresholds.

- Do the categories separate? A linear probe's held-out accuracy (core.interp.embeddings.geometry
  .separation) is judged against the better of two baselines: always guessing the largest category
  (chance) and the same probe on shuffled labels (the control). The categories separate **cleanly**
  when the probe reaches SEPARATED_AT (0.9) and beats both baselines by ABOVE_BASELINE (0.15);
  **partly** when it beats them by ABOVE_BASELINE but stays under SEPARATED_AT; else the probe is
  **no better than chance**: the categories are not linearly apart in this matrix.
- Do nearby positions get similar vectors? From W_pos's mean cosine by distance
  (core.interp.embeddings.positions.cosine_by_distance): neighbouring positions (1 apart) at least
  BAND_GAP (0.2) more alike than positions FAR (32) apart (or as far as the table reaches) draw a
  bright **diagonal band** on the cosine heatmap; otherwise there is **no band**.
- Where does an analogy's true answer land? The rank of the world's answer among every token
  (a, b, c and special tokens left out) for a - b + c: **first**, **near the top** (rank 2 to
  NEAR_TOP = 10), or **further down**.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.interp.embeddings.geometry import Separation, unit_rows

SEPARATED_AT = 0.9  # held-out probe accuracy from which categories separate cleanly
ABOVE_BASELINE = 0.15  # the probe must beat max(chance, control) by this much to count at all
NEAR_TOP = 10  # an analogy answer ranked 2..NEAR_TOP is "near the top"
BAND_GAP = 0.2  # neighbours this much more alike (cosine) than positions FAR apart: a diagonal band
FAR = 32  # the distance the neighbours are compared with (less when the table is shorter)

Level = Literal["chance", "partly", "cleanly"]
Place = Literal["first", "near the top", "further down"]


@dataclass(frozen=True)
class SeparationVerdict:
    level: Level
    accuracy: float
    baseline: float  # max(chance, control accuracy)
    baseline_name: str  # "chance" or "the shuffled-label control"


def separation_verdict(sep: Separation) -> SeparationVerdict:
    """How well the categories separate (see the module docstring)."""
    baseline, name = ((sep.chance, "chance") if sep.chance >= sep.control_accuracy
                      else (sep.control_accuracy, "the shuffled-label control"))
    if sep.probe_accuracy - baseline < ABOVE_BASELINE:
        level: Level = "chance"
    elif sep.probe_accuracy >= SEPARATED_AT:
        level = "cleanly"
    else:
        level = "partly"
    return SeparationVerdict(level, sep.probe_accuracy, baseline, name)


@dataclass(frozen=True)
class PositionBand:
    """W_pos's mean cosine between neighbouring positions and between positions `distance` apart."""

    neighbour: float
    far: float
    distance: int  # FAR, or less for a short table; 0 when the table has one row

    @property
    def gap(self) -> float:
        return self.neighbour - self.far

    @property
    def band(self) -> bool:
        return self.distance > 1 and bool(self.gap >= BAND_GAP)


def position_band(by_distance: np.ndarray) -> PositionBand:
    """The band verdict from cosine_by_distance's [n] (index k: mean cosine of rows k apart)."""
    distance = min(len(by_distance) - 1, FAR)
    if distance < 1:
        return PositionBand(float("nan"), float("nan"), 0)
    return PositionBand(float(by_distance[1]), float(by_distance[distance]), distance)


@dataclass(frozen=True)
class AnalogyCheck:
    """The world's answer to a - b + c and where it ranks among every candidate token."""

    truth: str  # the answer as a word, e.g. "he"
    what: str  # what it is, e.g. "the pronoun for John"
    rank: int  # 1 = the top answer
    n_candidates: int  # tokens ranked (the vocabulary minus a, b, c and special tokens)

    @property
    def place(self) -> Place:
        if self.rank == 1:
            return "first"
        return "near the top" if self.rank <= NEAR_TOP else "further down"


def analogy_rank(W: np.ndarray, a: int, b: int, c: int, target: int, exclude=()) -> tuple[int, int]:
    """(rank of row `target` by cosine to unit(a) - unit(b) + unit(c), number of candidates), with
    a, b, c and `exclude` left out, as geometry.analogy ranks them (1 = its top answer)."""
    U = unit_rows(W)
    query = U[a] - U[b] + U[c]
    sims = (U @ (query / max(float(np.linalg.norm(query)), 1e-12))).astype(np.float64)  # [d_vocab]
    out = np.zeros(len(U), dtype=bool)
    out[[a, b, c, *exclude]] = True
    if out[target]:
        raise ValueError("the answer is one of a, b, c or a special token")
    mine = sims[target]
    # ties keep the lower id first, as the stable sort in geometry.nearest does
    ahead = (sims[~out] > mine).sum() + ((sims == mine) & ~out & (np.arange(len(U)) < target)).sum()
    return int(ahead) + 1, int((~out).sum())
