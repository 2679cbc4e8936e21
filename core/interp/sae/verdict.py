"""What the page may say about an SAE's match with the ground truth: typed verdicts, named thresholds.

An attribute (one of the bundled world's word lists: colours, places, female names...) is *found*
when the single feature that tells its tokens apart best reaches an AUROC of FOUND_AUROC on
held-out text. That one number decides the headline ("found 4 of 11"), the colour of each bar, the
dashed line on the chart and every sentence of "what to notice"; nothing else in the lab defines it.

A list the SAE misses can be missed two ways. Its best feature is *narrow* when it catches under
NARROW_RECALL of the list's tokens but fires mostly on them: the SAE spends its features on single
words or small groups (a feature per name rather than one for "female name"). Or the feature is
broad and fires on much else too. A best AUROC just under the line (within NEAR_MISS) is a *near
miss*: the SAE has a feature that is almost the attribute, and a different seed or sparsity may
push it over. A found attribute whose feature has a precision under POOR_PRECISION fires mostly on
*other* tokens: AUROC only asks that the attribute's tokens score higher than the rest, so a dense
feature can pass it and still be a poor detector. And an attribute with no tokens in the held-out
text (a model whose vocabulary splits its words into pieces) is *absent*: nothing can be said
about it.

The sweep trains SAEs of different sparsity; its verdict says whether sparser SAEs found more, fewer
or about as many attributes, from a rank correlation between L0 and the number found. Why is a
hypothesis, checked where it leaves a trace: *feature splitting* (allowed few active features per
token, an SAE gives frequent words features of their own) leaves narrow best features on the lists
the sparsest SAE misses; a dense SAE that spreads a list over weak features leaves broad best
features (precision under POOR_PRECISION) on the lists the densest SAE misses. The verdict counts both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from scipy.stats import spearmanr

if TYPE_CHECKING:
    from core.interp.sae.features import GroundTruthMatch

FOUND_AUROC = 0.9  # an attribute is found when its best single feature reaches this AUROC
NEAR_MISS = 0.03  # a best AUROC this close below FOUND_AUROC is a near miss
POOR_PRECISION = 0.5  # a found attribute whose feature fires mostly on other tokens
HARDEST = 3  # how many of the lowest-scoring attributes "what to notice" names
TREND_RHO = 0.7  # |Spearman rho| of (L0, found) at or above this counts as a trend
NARROW_RECALL = 0.5  # a best feature that catches under half of a list's tokens, mostly correctly, is narrow
NAME_ATTRIBUTES = ("female names", "male names")

Status = Literal["found", "near miss", "not found", "absent"]
STATUSES: tuple[Status, ...] = ("found", "near miss", "not found", "absent")


def is_found(auroc: float) -> bool:
    """The one rule: the best feature's AUROC reaches FOUND_AUROC (NaN, for no tokens, is not)."""
    return not math.isnan(auroc) and auroc >= FOUND_AUROC


def status(auroc: float, n_tokens: int) -> Status:
    """found / near miss / not found for an attribute with tokens; absent without any."""
    if n_tokens == 0 or math.isnan(auroc):
        return "absent"
    if is_found(auroc):
        return "found"
    return "near miss" if auroc >= FOUND_AUROC - NEAR_MISS else "not found"


@dataclass(frozen=True)
class Findings:
    """The ground-truth result of one SAE, sorted into what the page says about it."""

    found: tuple[GroundTruthMatch, ...]  # best AUROC first
    near_misses: tuple[GroundTruthMatch, ...]
    missed: tuple[GroundTruthMatch, ...]  # present, not found and not near (best first)
    absent: tuple[GroundTruthMatch, ...]
    imprecise: tuple[GroundTruthMatch, ...]  # found, but precision under POOR_PRECISION
    hardest: tuple[GroundTruthMatch, ...]  # the HARDEST lowest AUROCs among present, not found ones

    @property
    def n_found(self) -> int:
        return len(self.found)

    @property
    def n_present(self) -> int:
        return len(self.found) + len(self.near_misses) + len(self.missed)

    @property
    def n_total(self) -> int:
        return self.n_present + len(self.absent)

    @property
    def names_hardest(self) -> bool:
        """Both name lists are present, not found, and among the hardest."""
        hard = {m.attribute for m in self.hardest}
        return all(name in hard for name in NAME_ATTRIBUTES)

    @property
    def narrow(self) -> tuple[GroundTruthMatch, ...]:
        """Hardest lists whose best feature is narrow: it catches under NARROW_RECALL of the list's
        tokens, and most of what it fires on is the list (precision >= POOR_PRECISION): the SAE
        spends its features on single words or small groups of the list."""
        return tuple(m for m in self.hardest if is_narrow(m))

    @property
    def missed_narrow(self) -> tuple[GroundTruthMatch, ...]:
        """Present lists it did not find whose best feature is narrow (what feature splitting predicts)."""
        return tuple(m for m in self.near_misses + self.missed if is_narrow(m))

    @property
    def missed_broad(self) -> tuple[GroundTruthMatch, ...]:
        """Present lists it did not find whose best feature fires mostly on other tokens
        (precision under POOR_PRECISION)."""
        return tuple(m for m in self.near_misses + self.missed if m.precision < POOR_PRECISION)


def is_narrow(m: GroundTruthMatch) -> bool:
    """The best feature catches under NARROW_RECALL of the list's tokens, and at least POOR_PRECISION of
    what it fires on is the list."""
    return m.recall < NARROW_RECALL and m.precision >= POOR_PRECISION


def findings(matches: Sequence[GroundTruthMatch]) -> Findings:
    def by_auroc(ms):
        return tuple(sorted(ms, key=lambda m: -m.auroc))

    sorted_in = {s: by_auroc(m for m in matches if status(m.auroc, m.n_tokens) == s) for s in STATUSES}
    not_found = sorted(sorted_in["near miss"] + sorted_in["not found"], key=lambda m: m.auroc)
    return Findings(
        found=sorted_in["found"], near_misses=sorted_in["near miss"], missed=sorted_in["not found"],
        absent=sorted_in["absent"],
        imprecise=tuple(m for m in sorted_in["found"] if m.precision < POOR_PRECISION),
        hardest=tuple(not_found[:HARDEST]),
    )


# -- the sweep --------------------------------------------------------------------------------------
Trend = Literal["sparser finds fewer", "sparser finds more", "no clear trend", "too few SAEs"]
MIN_SWEEP_POINTS = 3


@dataclass(frozen=True)
class SweepVerdict:
    trend: Trend
    rho: float  # Spearman correlation of L0 with the number found (NaN when it is undefined)
    found_range: tuple[int, int]  # fewest and most attributes found by one SAE of the sweep
    sparsest: tuple[float, int]  # (L0, found) of the sparsest SAE
    densest: tuple[float, int]  # (L0, found) of the densest SAE
    densest_imprecise: int = 0  # of the densest SAE's found attributes, those under POOR_PRECISION
    sparsest_missed: int = 0  # present lists the sparsest SAE did not find ...
    sparsest_narrow: int = 0  # ... and of those, the ones whose best feature is narrow
    densest_missed: int = 0  # present lists the densest SAE did not find ...
    densest_broad: int = 0  # ... and of those, the ones whose best feature is under POOR_PRECISION


def sweep_verdict(l0: Sequence[float], found: Sequence[int], imprecise: Sequence[int] | None = None, *,
                  missed: Sequence[int] | None = None, narrow: Sequence[int] | None = None,
                  broad: Sequence[int] | None = None) -> SweepVerdict:
    """Does sparsity (low L0) go with finding more or fewer attributes? A trend needs at least
    MIN_SWEEP_POINTS SAEs, |rho| >= TREND_RHO and a difference of at least one attribute.
    Per SAE (all optional, 0 when not given): imprecise, how many of its found attributes have a
    poor-precision feature; missed, how many present lists it did not find; narrow and broad, how many
    of those have a narrow or a broad (Findings.missed_narrow, missed_broad) best feature."""
    extra = [[0] * len(found) if v is None else list(v) for v in (imprecise, missed, narrow, broad)]
    rows = sorted(zip(l0, found, *extra, strict=True))
    if not rows:
        raise ValueError("A sweep verdict needs at least one SAE.")
    pairs = [(x, f) for x, f, *_ in rows]
    counts = [f for _, f in pairs]
    span = (min(counts), max(counts))
    first, last = rows[0], rows[-1]
    ends = dict(sparsest=(float(first[0]), int(first[1])), densest=(float(last[0]), int(last[1])),
                densest_imprecise=int(last[2]), sparsest_missed=int(first[3]), sparsest_narrow=int(first[4]),
                densest_missed=int(last[3]), densest_broad=int(last[5]))
    if len(pairs) < MIN_SWEEP_POINTS:
        return SweepVerdict("too few SAEs", float("nan"), span, **ends)
    if span[0] == span[1]:
        return SweepVerdict("no clear trend", float("nan"), span, **ends)
    rho = float(spearmanr([x for x, _ in pairs], counts).statistic)
    if math.isnan(rho) or abs(rho) < TREND_RHO:
        trend: Trend = "no clear trend"
    else:
        trend = "sparser finds fewer" if rho > 0 else "sparser finds more"
    return SweepVerdict(trend, rho, span, **ends)
