"""Are you as right as you say you are? Calibration of the predictions in a notebook.

Each graded prediction has a stated confidence c (0.5-1) that it is right, and an outcome y (1 right,
0 wrong). The Brier score is the mean of (c - y)^2: 0 is perfect, and always saying 50% scores 0.25.
A reliability table bins predictions by stated confidence and compares each bin's mean confidence with
the fraction that was right; a calibrated learner's points lie on the diagonal. Overconfidence shows as
points below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.notebook.entries import Entry

BIN_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
COIN_TOSS_BRIER = 0.25


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    n: int
    mean_confidence: float
    fraction_right: float


def graded(entries: Sequence[Entry]) -> list[Entry]:
    return [e for e in entries if e.correct is not None and e.confidence is not None]


def brier_score(entries: Sequence[Entry]) -> float | None:
    """Mean (confidence - outcome)^2 over graded predictions; None when there are none."""
    rows = graded(entries)
    if not rows:
        return None
    return sum((e.confidence - float(e.correct)) ** 2 for e in rows) / len(rows)


def reliability(entries: Sequence[Entry], edges: Sequence[float] = BIN_EDGES) -> list[ReliabilityBin]:
    """Bins of stated confidence (the last bin includes 100%), each with its fraction right."""
    rows = graded(entries)
    out = []
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = i == len(edges) - 2
        members = [e for e in rows if low <= e.confidence < high or (last and e.confidence == high)]
        if members:
            out.append(ReliabilityBin(low, high, len(members),
                                      sum(e.confidence for e in members) / len(members),
                                      sum(e.correct for e in members) / len(members)))
    return out


def accuracy_by_page(entries: Sequence[Entry]) -> dict[str, tuple[int, int]]:
    """page -> (right, graded)."""
    out: dict[str, tuple[int, int]] = {}
    for e in graded(entries):
        right, total = out.get(e.page, (0, 0))
        out[e.page] = (right + int(e.correct), total + 1)
    return out


def calibration_verdict(entries: Sequence[Entry], min_n: int = 10) -> str:
    """One sentence on the learner's calibration, computed from the entries."""
    rows = graded(entries)
    if len(rows) < min_n:
        return (f"{len(rows)} graded prediction{'s' if len(rows) != 1 else ''} so far; calibration says "
                f"something from about {min_n} on.")
    mean_conf = sum(e.confidence for e in rows) / len(rows)
    right = sum(e.correct for e in rows) / len(rows)
    gap = mean_conf - right
    brier = brier_score(rows)
    if abs(gap) < 0.05:
        how = "well calibrated: your stated confidence matches how often you are right"
    elif gap > 0:
        how = f"overconfident: you say {mean_conf:.0%} on average and are right {right:.0%} of the time"
    else:
        how = f"underconfident: you say {mean_conf:.0%} on average but are right {right:.0%} of the time"
    vs = "better than" if brier < COIN_TOSS_BRIER else "no better than"
    return (f"Over {len(rows)} graded predictions you are {how}. Brier score {brier:.3f} "
            f"({vs} always saying 50%: {COIN_TOSS_BRIER}).")
