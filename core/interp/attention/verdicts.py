"""What the Attention page may say about a result, decided here with named thresholds.

Every sentence that interprets a measurement is one of these verdicts, computed from the numbers on
screen; the page only words it.

- **Do the induction heads copy?** An induction head finds the token that followed an earlier copy
  of the current token; it only helps predict the next token if its OV circuit then *copies* that
  token into the output. The verdict is yes when every induction head's eigenvalue copying score
  (core.interp.attention.weight_circuits) reaches COPYING_HIGH, and it is set beside the other
  heads' median, so "copies" means more than what any head does.
- **Does a first-token share move anything?** Heads park attention on the first token when they
  have nothing to do, and its value vector is often small (an attention sink). When the raw share
  exceeds the value-weighted share by more than SINK_GAP, much of that weight moves little.
- **Do the induction heads fire on this prompt?** On repeated random tokens they score high by
  construction; on ordinary text they may have nothing to copy. Their share on the prompt is "high"
  from PROMPT_INDUCTION_HIGH, and is always shown next to their score on random tokens.
- **Does the ground truth hold?** The heads a kind's score puts at or above a threshold, compared
  with the heads the bundled model's evaluation report lists for that kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

COPYING_HIGH = 0.5  # an eigenvalue copying score from here on counts as copying
SINK_GAP = 0.15  # raw minus value-weighted first-token share above this: "much of that weight moves little"
PROMPT_INDUCTION_HIGH = 0.3  # mean share on the token after the earlier copy from here on: "at work"

Head = tuple[int, int]


@dataclass(frozen=True)
class CopyingVerdict:
    heads: tuple[Head, ...]  # the induction heads checked
    copying: tuple[float, ...]  # their eigenvalue copying scores, in [-1, 1]
    others_median: float | None  # the median copying score of every other head (None: no other head)
    all_copy: bool  # every checked head scores >= COPYING_HIGH
    median_rank: tuple[float, ...] | None = None  # a token's own rank in its OV row (median), if measured
    top5: tuple[float, ...] | None = None  # share of tokens among their own top 5, if measured
    n_vocab: int | None = None
    threshold: float = COPYING_HIGH


def copying_verdict(copying: np.ndarray, heads: Sequence[Head],
                    diagonal: Mapping[str, np.ndarray] | None = None) -> CopyingVerdict | None:
    """Do the induction `heads` copy? copying [layer, head]; diagonal (optional) holds "median_rank"
    and "top5" [layer, head] and "n_vocab". None when there is no induction head to check."""
    heads = tuple((int(a), int(b)) for a, b in heads)
    if not heads:
        return None
    scores = tuple(float(copying[a, b]) for a, b in heads)
    others = [float(copying[a, b]) for a, b in np.ndindex(copying.shape) if (a, b) not in heads]
    rank = top5 = n_vocab = None
    if diagonal is not None:
        rank = tuple(float(diagonal["median_rank"][a, b]) for a, b in heads)
        top5 = tuple(float(diagonal["top5"][a, b]) for a, b in heads)
        n_vocab = int(diagonal["n_vocab"])
    return CopyingVerdict(heads, scores, float(np.median(others)) if others else None,
                          all(s >= COPYING_HIGH for s in scores), rank, top5, n_vocab)


@dataclass(frozen=True)
class FirstTokenShare:
    raw: float  # mean raw attention on the first token, queries 1 onwards
    weighted: float  # the same, value-weighted
    moves_little: bool  # raw - weighted > SINK_GAP
    gap: float = SINK_GAP


def first_token_share(raw_pattern: np.ndarray, weighted_pattern: np.ndarray) -> FirstTokenShare | None:
    """One head's [q, k] patterns (raw and value-weighted); None with fewer than 3 positions."""
    if raw_pattern.shape[0] < 3:
        return None
    raw, weighted = float(raw_pattern[1:, 0].mean()), float(weighted_pattern[1:, 0].mean())
    return FirstTokenShare(raw, weighted, raw - weighted > SINK_GAP)


@dataclass(frozen=True)
class PromptInduction:
    heads: tuple[Head, ...]
    shares: tuple[float, ...]  # on the prompt: mean attention on the token after the earlier copy
    random_scores: tuple[float, ...]  # the same heads' induction score on repeated random tokens
    n_queries: int  # prompt tokens that occurred earlier (0: nothing to copy)
    at_work: bool  # the strongest share reaches PROMPT_INDUCTION_HIGH
    threshold: float = PROMPT_INDUCTION_HIGH


def prompt_induction_verdict(share: np.ndarray, n_queries: int, induction_scores: np.ndarray,
                             heads: Sequence[Head]) -> PromptInduction | None:
    """share [layer, head] on the prompt (patterns.prompt_induction), induction_scores [layer, head]
    on random tokens. None when there are no heads or no repeated token to measure on."""
    heads = tuple((int(a), int(b)) for a, b in heads)
    if not heads or not n_queries:
        return None
    shares = tuple(float(share[a, b]) for a, b in heads)
    return PromptInduction(heads, shares, tuple(float(induction_scores[a, b]) for a, b in heads), n_queries,
                           max(shares) >= PROMPT_INDUCTION_HIGH)


@dataclass(frozen=True)
class ListingCheck:
    kind: str
    listed: tuple[Head, ...]  # the heads the report lists for this kind
    found: tuple[Head, ...]  # the heads scoring >= threshold now
    best: Head
    best_score: float
    same: bool  # the two sets are equal
    threshold: float


def heads_at_least(table: np.ndarray, threshold: float) -> tuple[Head, ...]:
    """(layer, head) of every head whose score in table [layer, head] is >= threshold, in order."""
    return tuple((int(a), int(b)) for a, b in np.argwhere(np.asarray(table, dtype=float) >= threshold))


def check_listing(kind: str, table: np.ndarray, listed: Iterable[Head], threshold: float) -> ListingCheck:
    """Compare the heads that reach `threshold` in table [layer, head] with the listed ones."""
    table = np.asarray(table, dtype=float)
    best = tuple(int(i) for i in np.unravel_index(np.argmax(table), table.shape))
    listed = tuple((int(a), int(b)) for a, b in listed)
    found = heads_at_least(table, threshold)
    return ListingCheck(kind, listed, found, best, float(table[best]), set(listed) == set(found), threshold)
