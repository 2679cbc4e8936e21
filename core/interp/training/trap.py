"""Solved by position or by content? Telling an induction head from a positional shortcut.

On the fixed-offset task every copied token sits exactly `period` places after its original, so a
head that always looks `period - 1` places back (from the token before the one to predict) gets
every copy right without ever comparing tokens. It is a positional shortcut: it fails the moment the
distance changes. An induction head compares contents (find the earlier copy of the current token,
predict what followed it) and works at any distance.

The run itself tells them apart, from two numbers logged at every step:
- the copy loss: the loss on the copied tokens of the task's own held-out sequences, at the
  training distance. It is solved when it is at most COPY_SOLVED of chance (log of the number of
  symbols, the loss of a uniform guess);
- the in-context-learning probe: repeated random tokens at another distance (BOS + x + x with
  x of 24 tokens, or (n_ctx - 1) // 2 if the sequences are shorter; the settings refuse a period
  equal to it). A model that reads content predicts that repeat too: its loss on the repeated half
  falls at least USES_CONTEXT_NATS below chance; a positional shortcut does not. The repeated half
  is compared with chance, not with the first half: a shortcut trained on copies `period` back
  predicts a copy inside the random first half too, confidently and wrongly, so its first-half
  loss rises far above chance (measured: 6.2 nats against 2.8) and "repeated minus first" would
  look like in-context learning where there is none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from core.interp.training.log import TrainingLog

COPY_SOLVED = 0.5  # copy loss at most half of chance: the copies are being predicted
USES_CONTEXT_NATS = 0.5  # repeated-half loss this far below chance: the repeat at another distance is read


@dataclass(frozen=True)
class CopyMechanism:
    """kind: by_position (solved at its own distance only), by_content (solved at any distance),
    not_solved (the copies are not predicted yet)."""

    kind: Literal["by_position", "by_content", "not_solved"]
    copy_loss: float  # own distance, held-out sequences
    chance: float  # log(number of symbols)
    icl: float  # repeated - first half loss on the probe at another distance
    first_half_loss: float
    repeated_half_loss: float
    step: int

    @property
    def copy_share_of_chance(self) -> float:
        return self.copy_loss / self.chance


def copy_mechanism(log: TrainingLog, n_symbols: int) -> CopyMechanism | None:
    """The verdict at the log's last step (None without a copy loss and an ICL probe)."""
    last = next((c for c in reversed(log.checkpoints) if c.copy_loss is not None and c.icl is not None), None)
    if last is None:
        return None
    chance = math.log(n_symbols)
    if last.copy_loss > COPY_SOLVED * chance:
        kind = "not_solved"
    elif last.repeated_half_loss <= chance - USES_CONTEXT_NATS:
        kind = "by_content"
    else:
        kind = "by_position"
    return CopyMechanism(kind, last.copy_loss, chance, last.icl, last.first_half_loss,
                         last.repeated_half_loss, last.step)
