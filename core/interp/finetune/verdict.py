"""What the forgetting curves say: typed verdicts, computed from a run's measured skills.

Every sentence the page says about a run is worded from these objects, never written in advance:

- learned: the new-task accuracy at the end is at least LEARNED.
- forgot a skill: its accuracy fell by at least FORGOT (IOI, facts and induction are accuracies in
  [0, 1], so the drop is in points of accuracy: 1.00 -> 0.37 is a drop of 0.63).
- which method forgot more, skill by skill and overall (the mean drop over the old skills): the one
  whose drop is larger by at least SAME_WITHIN; closer than that is "about the same", because a
  different seed moves these numbers by about that much.

"LoRA Learns Less and Forgets Less" (Biderman et al., 2024) found LoRA forgets less than full
fine-tuning on code and maths; `ForgettingComparison.agrees_with_paper` says whether this run did.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from core.interp.finetune.forgetting import OLD_SKILLS

LEARNED = 0.9  # new-task accuracy at the end that counts as learned
FORGOT = 0.05  # an accuracy drop of at least this much (5 points) counts as forgetting
SAME_WITHIN = 0.03  # two drops closer than this are "about the same"

More = Literal["lora", "full", "same"]
History = Sequence[tuple[int, Mapping[str, float]]]


@dataclass(frozen=True)
class SkillDrop:
    """One old skill's accuracy before and after a run."""

    skill: str
    before: float
    after: float

    @property
    def drop(self) -> float:
        """Accuracy lost (positive = forgotten; negative = it got better)."""
        return self.before - self.after

    @property
    def forgotten(self) -> bool:
        return self.drop >= FORGOT


@dataclass(frozen=True)
class RunVerdict:
    """One run: did it learn the task, and what did it forget."""

    label: str  # "LoRA r=8", "Full fine-tuning"
    method: str  # "lora", "ia3", "full" or "loaded"
    task_before: float
    task_after: float
    drops: tuple[SkillDrop, ...]  # the old skills this model has data for
    val_loss_change: float  # after - before, nats (positive: worse on the original corpus)

    @property
    def learned(self) -> bool:
        return self.task_after >= LEARNED  # False for NaN (no task probe fits this model)

    @property
    def forgotten(self) -> tuple[SkillDrop, ...]:
        return tuple(d for d in self.drops if d.forgotten)

    @property
    def mean_drop(self) -> float:
        """Mean accuracy lost over the old skills (NaN when none could be measured)."""
        return sum(d.drop for d in self.drops) / len(self.drops) if self.drops else math.nan

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
    def more(self) -> More:
        """Which run forgot more overall: the larger mean drop over the old skills."""
        lora = sum(s.lora.drop for s in self.skills) / len(self.skills) if self.skills else 0.0
        full = sum(s.full.drop for s in self.skills) / len(self.skills) if self.skills else 0.0
        return _which(lora, full)

    @property
    def agrees_with_paper(self) -> bool:
        """Did LoRA forget less than full fine-tuning here, as Biderman et al. (2024) found?"""
        return self.more == "full"


@dataclass(frozen=True)
class ForgettingReport:
    """Every trained run's verdict, and LoRA against full fine-tuning when both ran."""

    runs: tuple[RunVerdict, ...]
    comparison: ForgettingComparison | None

    def run(self, label: str) -> RunVerdict | None:
        return next((r for r in self.runs if r.label == label), None)

    @property
    def lora(self) -> RunVerdict | None:
        return next((r for r in self.runs if r.method == "lora"), None)


def run_verdict(label: str, method: str, history: History) -> RunVerdict | None:
    """The verdict on one run from its measured history [(step, skills)]; None before two measurements."""
    if len(history) < 2:
        return None
    first, last = history[0][1], history[-1][1]
    drops = tuple(SkillDrop(s, float(first[s]), float(last[s])) for s in OLD_SKILLS
                  if math.isfinite(first[s]) and math.isfinite(last[s]))
    return RunVerdict(label, method, float(first["task_accuracy"]), float(last["task_accuracy"]), drops,
                      float(last["val_loss"]) - float(first["val_loss"]))


def compare(lora: RunVerdict, full: RunVerdict) -> ForgettingComparison:
    skills = []
    for a in lora.drops:
        b = full.drop_of(a.skill)
        if b is not None:
            skills.append(SkillComparison(a.skill, a, b))
    return ForgettingComparison(lora, full, tuple(skills))


def forgetting_report(runs: Mapping[str, tuple[str, History]]) -> ForgettingReport:
    """label -> (method, history) for each run -> the report (runs measured fewer than twice are left
    out; the comparison takes the first LoRA run and the first full fine-tuning run)."""
    verdicts = tuple(v for label, (method, history) in runs.items()
                     if (v := run_verdict(label, method, history)) is not None)
    lora = next((v for v in verdicts if v.method == "lora"), None)
    full = next((v for v in verdicts if v.method == "full"), None)
    return ForgettingReport(verdicts, compare(lora, full) if lora and full else None)
