"""What the Embeddings page may say about a result: typed verdicts with named thresholds.

- Do the categories separate? A linear probe's held-out accuracy (core.interp.embeddings.geometry
  .separation) is judged against the better of two baselines: always guessing the largest category
  (chance) and the same probe on shuffled labels (the control). The categories separate **cleanly**
  when the probe reaches SEPARATED_AT (0.9) and beats both baselines by ABOVE_BASELINE (0.15);
  **partly** when it beats them by ABOVE_BASELINE but stays under SEPARATED_AT; else the probe is
  **no better than chance**: the categories are not linearly apart in this matrix.
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
