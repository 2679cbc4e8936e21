"""What the forgetting curves say: typed verdicts, computed from a run's measured skills.

Every sentence the page says about a run is worded from these objects, never written in advance:

- before -> after: a `SkillDrop` per skill, first against last measurement, its `drop` signed so that
  positive is worse (an accuracy fell, a loss rose). The page's table and every verdict use it.
- learned: the new-task accuracy at the end is at least LEARNED.
- forgot a skill: its accuracy fell by at least FORGOT (IOI, facts and induction are accuracies in
  [0, 1], so the drop is in points of accuracy: 1.00 -> 0.37 is a drop of 0.63).
- what to change when a run did not learn: a run whose weights or loss became NaN or infinite
  (`diverged`) took steps far too large; one that did not learn while its loss on the original corpus
  rose by UNSTABLE_LOSS_RISE nats or more moved a long way, just not towards the task, so its steps
  were too large too; any other run that did not learn needs more steps or a larger learning rate.
- which method forgot more, skill by skill and overall: the one whose drop is larger by at least
  SAME_WITHIN; closer than that is "about the same", because a different seed moves these numbers by
  about that much. Overall means the mean drop over the old skills *both* runs measured (the paired
  means `lora_mean_drop`, `full_mean_drop`), so the numbers printed are the numbers compared.

"LoRA Learns Less and Forgets Less" (Biderman et al., 2024) found LoRA forgets less than full
fine-tuning on code and maths; `ForgettingComparison.agrees_with_paper` says whether this run did.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from core.interp.finetune.forgetting import ACCURACIES, HIGHER_IS_BETTER, OLD_SKILLS, SKILLS

LEARNED = 0.9  # new-task accuracy at the end that counts as learned
FORGOT = 0.05  # an accuracy drop of at least this much (5 points) counts as forgetting
SAME_WITHIN = 0.03  # two drops closer than this are "about the same"
# Validation loss rise (nats) that marks steps too large: on the bundled model, 150 steps at the
# page's default learning rates raise it by 0.2-0.7 nats; 2e-2 raises it by 2-18 (measured per task).
UNSTABLE_LOSS_RISE = 1.5

More = Literal["lora", "full", "same"]
Advice = Literal["smaller_lr", "more_steps_or_larger_lr"]
History = Sequence[tuple[int, Mapping[str, float]]]


@dataclass(frozen=True)
class SkillDrop:
    """One skill's value before and after a run (a name of core.interp.finetune.forgetting.SKILLS)."""

    skill: str
    before: float
    after: float

    @property
    def drop(self) -> float:
        """How much worse it got: accuracy lost, or loss gained (negative: it got better)."""
        fell = self.before - self.after
        return fell if HIGHER_IS_BETTER[self.skill] else -fell

    @property
    def forgotten(self) -> bool:
        """An accuracy that fell by at least FORGOT (the other measures have no such threshold)."""
        return self.skill in ACCURACIES and self.drop >= FORGOT


def skill_drops(history: History, skills: Sequence[str] = SKILLS) -> tuple[SkillDrop, ...]:
    """First vs last measurement of each skill in a history [(step, skills)], where both are finite."""
    if not history:
        return ()
    first, last = history[0][1], history[-1][1]
    return tuple(SkillDrop(s, float(first[s]), float(last[s])) for s in skills
                 if math.isfinite(first[s]) and math.isfinite(last[s]))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


@dataclass(frozen=True)
class RunVerdict:
    """One run: did it learn the task, and what did it forget."""

    label: str  # "LoRA r=8", "Full fine-tuning"
    method: str  # "lora", "ia3", "full" or "loaded"
    task_before: float
    task_after: float
    drops: tuple[SkillDrop, ...]  # the old skills this model has data for
    val_loss_change: float  # after - before, nats (positive: worse on the original corpus)
    diverged: bool = False  # a weight or the loss became NaN or infinite

    @property
    def learned(self) -> bool:
        """The new-task accuracy at the end reached LEARNED, and the weights are still numbers."""
        return self.task_after >= LEARNED and not self.diverged  # False for NaN (no task probe fits)

    @property
    def unstable(self) -> bool:
        """The loss on the original corpus rose by at least UNSTABLE_LOSS_RISE nats."""
        return self.val_loss_change >= UNSTABLE_LOSS_RISE  # False for NaN

    @property
    def advice(self) -> Advice | None:
        """What to change for this run to learn the task; None when it learned."""
        if self.diverged or (not self.learned and self.unstable):
            return "smaller_lr"
        return None if self.learned else "more_steps_or_larger_lr"

    @property
    def forgotten(self) -> tuple[SkillDrop, ...]:
        return tuple(d for d in self.drops if d.forgotten)

    @property
    def mean_drop(self) -> float:
        """Mean accuracy lost over this run's old skills (NaN when none could be measured)."""
        return _mean([d.drop for d in self.drops])

    def drop_of(self, skill: str) -> SkillDrop | None:
        return next((d for d in self.drops if d.skill == skill), None)


def _which(lora_drop: float, full_drop: float) -> More:
    if abs(lora_drop - full_drop) < SAME_WITHIN:
        return "same"
    return "lora" if lora_drop > full_drop else "full"


@dataclass(frozen=True)
class SkillComparison:
    skill: str
    lora: SkillDrop
    full: SkillDrop

    @property
    def more(self) -> More:
        """Which run lost more of this skill ("same" within SAME_WITHIN)."""
        return _which(self.lora.drop, self.full.drop)

    @property
    def kept_by_both(self) -> bool:
        return not (self.lora.forgotten or self.full.forgotten)


@dataclass(frozen=True)
class ForgettingComparison:
    """A LoRA run against a full fine-tuning run on the same task, data and seed."""

    lora: RunVerdict
    full: RunVerdict
    skills: tuple[SkillComparison, ...]  # the old skills both runs have data for

    @property
    def lora_mean_drop(self) -> float:
        """LoRA's mean accuracy lost over the old skills both runs measured (NaN: none)."""
        return _mean([s.lora.drop for s in self.skills])

    @property
    def full_mean_drop(self) -> float:
        """Full fine-tuning's mean accuracy lost over the old skills both runs measured (NaN: none)."""
        return _mean([s.full.drop for s in self.skills])

    @property
    def more(self) -> More:
        """Which run forgot more overall: the larger paired mean drop ("same" when nothing is shared)."""
        if not self.skills:
            return "same"
        return _which(self.lora_mean_drop, self.full_mean_drop)

    @property
    def agrees_with_paper(self) -> bool:
        """Did LoRA forget less than full fine-tuning here, as Biderman et al. (2024) found?"""
        return self.more == "full"


@dataclass(frozen=True)
class ForgettingReport:
    """Every trained run's verdict, and LoRA against full fine-tuning when both ran."""

    runs: tuple[RunVerdict, ...]
    comparison: ForgettingComparison | None
    diverged: tuple[str, ...] = ()  # every run whose weights or loss became NaN or infinite, measured or not

    def run(self, label: str) -> RunVerdict | None:
        return next((r for r in self.runs if r.label == label), None)

    @property
    def lora(self) -> RunVerdict | None:
        return next((r for r in self.runs if r.method == "lora"), None)


def run_verdict(label: str, method: str, history: History, diverged: bool = False) -> RunVerdict | None:
    """The verdict on one run from its measured history [(step, skills)]; None before two measurements."""
    if len(history) < 2:
        return None
    first, last = history[0][1], history[-1][1]
    return RunVerdict(label, method, float(first["task_accuracy"]), float(last["task_accuracy"]),
                      skill_drops(history, OLD_SKILLS), float(last["val_loss"]) - float(first["val_loss"]),
                      diverged)


def compare(lora: RunVerdict, full: RunVerdict) -> ForgettingComparison:
    skills = []
    for a in lora.drops:
        b = full.drop_of(a.skill)
        if b is not None:
            skills.append(SkillComparison(a.skill, a, b))
    return ForgettingComparison(lora, full, tuple(skills))


def forgetting_report(runs: Mapping[str, tuple[str, History]], diverged: Collection[str] = ()
                      ) -> ForgettingReport:
    """label -> (method, history) for each run -> the report (runs measured fewer than twice are left
    out; the comparison takes the first LoRA run and the first full fine-tuning run). `diverged`
    names the runs whose weights or loss became NaN or infinite."""
    verdicts = tuple(v for label, (method, history) in runs.items()
                     if (v := run_verdict(label, method, history, label in diverged)) is not None)
    lora = next((v for v in verdicts if v.method == "lora"), None)
    full = next((v for v in verdicts if v.method == "full"), None)
    return ForgettingReport(verdicts, compare(lora, full) if lora and full else None,
                            tuple(label for label in runs if label in diverged))
