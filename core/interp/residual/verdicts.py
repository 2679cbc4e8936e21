"""What the page may say about a result, decided here from the numbers (thresholds named below).

- Readability: at which stream point does the answer become the lens's top prediction, and stay so
  through the output? For a set of prompts, the first point from which at least READABLE_SHARE of
  them have it on top.
- Writers: the heads whose direct effect on the logit difference is at least WRITER_FRACTION of what
  all heads add in the answer's favour (and the ones that push as hard against it).
- Head check: those writers next to the heads an evaluation report lists by type (the page passes
  the report's lists in; this module never reads a report itself).
- Lens comparison: at which layers the logit lens misreads the stream, judged by the tuned lens:
  the logit lens's KL to the output is at least MISREAD_GAP nats and MISREAD_RATIO times the tuned
  lens's.
- Sum check: the parts of direct logit attribution sum to the model's logit difference within
  SUM_TOLERANCE (relative to the logit difference's size, at least 1).
- Anatomy: the stream equals embeddings + writes within SUM_GAP_TOLERANCE, else something
  (an intervention) added to it directly; writes whose cosine with the stream they read is at most
  ERASE_COSINE mostly remove what is there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.interp.residual.anatomy import StreamAnatomy
from core.interp.residual.dla import DLAResult

READABLE_SHARE = 0.5
WRITER_FRACTION = 0.15
MAX_WRITERS = 6
MISREAD_GAP = 1.0  # nats
MISREAD_RATIO = 2.0
SUM_TOLERANCE = 1e-4
SUM_GAP_TOLERANCE = 1e-4
ERASE_COSINE = -0.3


# -- readability -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Readability:
    lens: str  # "logit" or "tuned"
    layers: tuple[int, ...]  # stream points
    share_top: np.ndarray  # [point] share of prompts whose lens top-1 is the answer
    answer_prob: np.ndarray  # [point] mean probability of the answer
    first_layer: int | None  # the first stream point from which share_top >= READABLE_SHARE to the end
    n_prompts: int
    answer: str = ""  # the answer in words (a token, or "the IO name")


def first_readable(share_top: Sequence[float], layers: Sequence[int],
                   threshold: float = READABLE_SHARE) -> int | None:
    """The earliest stream point from which share_top stays >= threshold through the last one."""
    first = None
    for layer, share in zip(reversed(list(layers)), reversed(list(share_top)), strict=True):
        if share < threshold:
            break
        first = layer
    return first


def readability(top1: np.ndarray, answer_prob: np.ndarray, answer_ids: Sequence[int],
                layers: Sequence[int], *, lens: str = "logit", answer: str = "") -> Readability:
    """top1 [point, batch] (the lens's top token at the answer position), answer_prob [point, batch]."""
    top1 = np.asarray(top1)
    share = (top1 == np.asarray(answer_ids)[None, :]).mean(1)
    return Readability(lens, tuple(layers), share, np.asarray(answer_prob).mean(1),
                       first_readable(share, layers), int(top1.shape[1]), answer)


# -- which heads write the answer ------------------------------------------------------------------
@dataclass(frozen=True)
class Writers:
    heads: tuple[tuple[int, int], ...]  # heads pushing for the answer, strongest first
    values: tuple[float, ...]
    against: tuple[tuple[int, int], ...]  # heads pushing as hard against it
    against_values: tuple[float, ...]
    threshold: float  # the contribution a head needed (WRITER_FRACTION of all heads' positive sum)
    heads_share: float  # what the writers add, as a share of the model's logit difference


def writers(result: DLAResult, fraction: float = WRITER_FRACTION) -> Writers:
    table = result.head_table  # [layer, head]
    positive = float(table[table > 0].sum())
    threshold = fraction * positive
    order = np.argsort(-table, axis=None)
    pairs = [tuple(int(i) for i in np.unravel_index(k, table.shape)) for k in order]
    pro = [p for p in pairs if positive > 0 and table[p] >= threshold][:MAX_WRITERS]
    con = [p for p in reversed(pairs) if positive > 0 and table[p] <= -threshold][:MAX_WRITERS]
    share = float(sum(table[p] for p in pro) / result.total) if result.total else float("nan")
    return Writers(tuple(pro), tuple(float(table[p]) for p in pro), tuple(con),
                   tuple(float(table[p]) for p in con), threshold, share)


@dataclass(frozen=True)
class HeadCheck:
    """The writers found, next to a report's heads by type."""

    verdict: str  # "all_listed", "some_listed", "none_listed", "no_writers"
    listed_as: dict  # (layer, head) -> tuple of kinds the report lists it under (writers only)
    unlisted: tuple[tuple[int, int], ...]


def check_heads(found: Writers, listed: Mapping[str, Sequence[tuple]]) -> HeadCheck:
    """Compare writer heads with listed heads: listed maps a kind ("induction") to (layer, head, ...)."""
    kinds_of: dict[tuple[int, int], list[str]] = {}
    for kind, rows in listed.items():
        for row in rows:
            kinds_of.setdefault((int(row[0]), int(row[1])), []).append(kind)
    as_listed = {h: tuple(kinds_of[h]) for h in found.heads if h in kinds_of}
    unlisted = tuple(h for h in found.heads if h not in kinds_of)
    if not found.heads:
        verdict = "no_writers"
    elif not unlisted:
        verdict = "all_listed"
    elif as_listed:
        verdict = "some_listed"
    else:
        verdict = "none_listed"
    return HeadCheck(verdict, as_listed, unlisted)


# -- where the logit lens misreads -----------------------------------------------------------------
@dataclass(frozen=True)
class LensComparison:
    layers: tuple[int, ...]
    kl_logit: np.ndarray  # [point]
    kl_tuned: np.ndarray  # [point]
    misread: tuple[int, ...]  # stream points where the logit lens is far off and the tuned lens is not
    tuned_better_everywhere: bool  # below the logit lens at every point but the last (both 0 there)


def compare_lenses(layers: Sequence[int], kl_logit: Sequence[float], kl_tuned: Sequence[float]
                   ) -> LensComparison:
    lo, tu = np.asarray(kl_logit, dtype=float), np.asarray(kl_tuned, dtype=float)
    misread = tuple(int(layer) for layer, a, b in zip(layers, lo, tu, strict=True)
                    if a - b >= MISREAD_GAP and a >= MISREAD_RATIO * b)
    better = bool(np.all(tu[:-1] < lo[:-1])) if len(lo) > 1 else False
    return LensComparison(tuple(layers), lo, tu, misread, better)


# -- bookkeeping -----------------------------------------------------------------------------------
def parts_sum_exactly(result: DLAResult) -> bool:
    return result.error <= SUM_TOLERANCE * max(1.0, abs(result.total))


@dataclass(frozen=True)
class AnatomyVerdict:
    exact_sum: bool
    largest: str  # the write with the largest mean norm
    erasers: tuple[str, ...]  # writes pointing against the stream they read


def anatomy_verdict(a: StreamAnatomy) -> AnatomyVerdict:
    writes = [i for i, k in enumerate(a.kinds) if k != "embed"]
    largest = a.labels[max(writes, key=lambda i: a.write_norm[i])] if writes else a.labels[0]
    erasers = tuple(a.labels[i] for i in writes if a.cos_input[i] <= ERASE_COSINE)
    return AnatomyVerdict(a.sum_gap <= SUM_GAP_TOLERANCE, largest, erasers)
