"""Phase changes, read from a training log: when did the induction head form, when did it grok?

Small transformers often learn in jumps rather than smoothly: a plateau, then within a few hundred
steps a new circuit forms and the loss drops (Olsson et al., 2022). Both kinds of jump are found
from the logged numbers alone, with the thresholds named below.

Induction (tasks with repeated-sequence scores):
- a head "is" an induction head once its induction score reaches INDUCTION_FORMED (0.5: at least
  half its attention goes to the token after the earlier copy); previous-token heads likewise with
  PREVIOUS_FORMED;
- the phase change is the stretch of at most JUMP_WINDOW (a tenth of the run, at least one logged
  interval) where the best induction score rose most; it is called sharp when that stretch carries
  at least SHARP_RISE of score and at least SHARP_SHARE of the score's whole rise over the run, and
  the in-context-learning score (repeated-half loss minus first-half loss) is reported across the
  same stretch.

Grokking (modular addition):
- memorised: the first logged step where training accuracy reaches ACCURACY_REACHED;
- generalised: the first logged step where test accuracy does;
- grokked: generalisation came at least GROK_DELAY_FACTOR times as late as memorisation (a long
  stretch of a memorised network that does not generalise, then a sudden turn); generalised with
  it: sooner; memorised only: test accuracy never got there; not learned: training accuracy
  never did either. The train/test gap is the difference in accuracy; it counts as closed when it
  ends at most GAP_CLOSED after having been at least GAP_OPEN. "Ends" is the mean gap over the last
  tenth of the run (END_SHARE): test accuracy wobbles by a few points from one logged step to the
  next after a model generalises, and one logged step should not decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.interp.training.log import Checkpoint, TrainingLog

INDUCTION_FORMED = 0.5
PREVIOUS_FORMED = 0.5
SHARP_RISE = 0.2
SHARP_SHARE = 0.5
JUMP_WINDOW = 0.1  # share of the run's steps a jump may span
ACCURACY_REACHED = 0.9
GROK_DELAY_FACTOR = 2.0
GAP_OPEN, GAP_CLOSED = 0.5, 0.1
END_SHARE = 0.1  # the run's end, for the final gap: its last tenth of steps


@dataclass(frozen=True)
class Jump:
    """The logged interval (step_before, step] in which a series rose most."""

    step_before: int
    step: int
    before: float
    after: float

    @property
    def rise(self) -> float:
        return self.after - self.before


def steepest_rise(steps: list[int], values: list[float | None], window: int = 0) -> Jump | None:
    """The largest increase between two logged values at most `window` steps apart (0: consecutive
    values only); None under two values."""
    pairs = [(s, v) for s, v in zip(steps, values, strict=True) if v is not None and v == v]
    best = None
    for i, (s0, v0) in enumerate(pairs):
        for j in range(i + 1, len(pairs)):
            s1, v1 = pairs[j]
            if j > i + 1 and s1 - s0 > window:
                break
            if best is None or v1 - v0 > best.rise:
                best = Jump(s0, s1, v0, v1)
    return best


def first_step(steps: list[int], values: list[float | None], threshold: float) -> int | None:
    """The first logged step where the value reaches the threshold."""
    return next((s for s, v in zip(steps, values, strict=True) if v is not None and v >= threshold), None)


def best_head(checkpoint: Checkpoint, kind: str) -> tuple[int, int, float] | None:
    """(layer, head, score) of the highest-scoring head of a kind at one checkpoint."""
    if not checkpoint.scores or kind not in checkpoint.scores:
        return None
    table = checkpoint.scores[kind]
    return max(((layer, head, float(v)) for layer, row in enumerate(table) for head, v in enumerate(row)),
               key=lambda t: t[2])


@dataclass(frozen=True)
class InductionVerdict:
    """What the log says about induction heads. kind: formed_sharply, formed_gradually, not_formed."""

    kind: Literal["formed_sharply", "formed_gradually", "not_formed"]
    formed_step: int | None  # first logged step with an induction score >= INDUCTION_FORMED
    previous_step: int | None  # first logged step with a previous-token score >= PREVIOUS_FORMED
    jump: Jump | None  # of the best induction score
    head: tuple[int, int, float] | None  # the best induction head at the end
    previous_head: tuple[int, int, float] | None  # the best previous-token head at the end
    icl_before: float | None  # ICL score at jump.step_before and at jump.step
    icl_after: float | None
    n_layers: int
    last_step: int
    previous_at_formed: float | None = None  # the best previous-token score at formed_step

    @property
    def formed(self) -> bool:
        return self.kind != "not_formed"


def induction_verdict(log: TrainingLog) -> InductionVerdict | None:
    """None when the log has no head scores (modular addition)."""
    scored = [c for c in log.checkpoints if c.scores]
    if not scored:
        return None
    steps = [c.step for c in scored]
    induction = [c.best("induction") for c in scored]
    previous = [c.best("previous_token") for c in scored]
    formed = first_step(steps, induction, INDUCTION_FORMED)
    jump = steepest_rise(steps, induction, window=round(JUMP_WINDOW * steps[-1]))
    icl = {c.step: c.icl for c in scored}
    known = [v for v in induction if v is not None]
    whole_rise = max(known) - known[0] if known else 0.0
    if formed is None:
        kind = "not_formed"
    elif jump is not None and jump.rise >= SHARP_RISE and jump.rise >= SHARP_SHARE * whole_rise:
        kind = "formed_sharply"
    else:
        kind = "formed_gradually"
    return InductionVerdict(
        kind=kind, formed_step=formed, previous_step=first_step(steps, previous, PREVIOUS_FORMED), jump=jump,
        head=best_head(scored[-1], "induction"), previous_head=best_head(scored[-1], "previous_token"),
        icl_before=icl.get(jump.step_before) if jump else None,
        icl_after=icl.get(jump.step) if jump else None,
        n_layers=len(scored[-1].scores["induction"]), last_step=steps[-1],
        previous_at_formed=dict(zip(steps, previous, strict=True)).get(formed))


@dataclass(frozen=True)
class GrokVerdict:
    """What the log says about memorising and generalising (modular addition)."""

    kind: Literal["grokked", "generalised_with_it", "memorised_only", "not_learned"]
    memorised_step: int | None
    generalised_step: int | None
    jump: Jump | None  # of the test accuracy
    max_gap: float  # largest train - test accuracy gap logged
    final_gap: float  # mean gap over the run's last tenth (END_SHARE)
    fourier_start: float | None
    fourier_end: float | None
    last_step: int

    @property
    def gap_closed(self) -> bool:
        return self.max_gap >= GAP_OPEN and self.final_gap <= GAP_CLOSED

    @property
    def delay_factor(self) -> float | None:
        """generalised_step / memorised_step (how many times later test accuracy arrived)."""
        if self.memorised_step is None or self.generalised_step is None:
            return None
        return self.generalised_step / max(1, self.memorised_step)


def grok_verdict(log: TrainingLog) -> GrokVerdict | None:
    """None when the log has no accuracies (every task but modular addition)."""
    rows = [c for c in log.checkpoints if c.train_acc is not None and c.test_acc is not None]
    if not rows:
        return None
    steps = [c.step for c in rows]
    train, test = [c.train_acc for c in rows], [c.test_acc for c in rows]
    memorised = first_step(steps, train, ACCURACY_REACHED)
    generalised = first_step(steps, test, ACCURACY_REACHED)
    gaps = [a - b for a, b in zip(train, test, strict=True)]
    if memorised is None:
        kind = "not_learned"
    elif generalised is None:
        kind = "memorised_only"
    elif generalised >= GROK_DELAY_FACTOR * max(1, memorised):
        kind = "grokked"
    else:
        kind = "generalised_with_it"
    fourier = [c.fourier_sparsity for c in rows if c.fourier_sparsity is not None]
    end = [g for step, g in zip(steps, gaps, strict=True) if step >= (1 - END_SHARE) * steps[-1]]
    final_gap = sum(end) / len(end)
    return GrokVerdict(kind, memorised, generalised, steepest_rise(steps, test), max(gaps), final_gap,
                       fourier[0] if fourier else None, fourier[-1] if fourier else None, steps[-1])
