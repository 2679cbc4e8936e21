"""The training log: one record per logged step, and the whole run as a small JSON document.

A log is what every chart reads and what the timeline slider scrubs through: the live run's log
grows while it trains; the bundled model's replay (assets/bundled/timeline.json) is the same
format, written once by core.bundled.timeline. Fields a task does not measure are None (modular
addition has no induction score; the grammar has no accuracy).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

FORMAT = "lab-training-log/1"


@dataclass(frozen=True)
class Checkpoint:
    """What was measured after `step` optimizer steps."""

    step: int
    train_loss: float | None  # mean training loss since the previous record (None before step 1)
    test_loss: float | None = None  # loss on held-out data of the task
    copy_loss: float | None = None  # ... on its copied tokens only (induction-type tasks)
    first_half_loss: float | None = None  # ICL probe: loss on the random first half
    repeated_half_loss: float | None = None  # ... and on its repeat
    scores: dict | None = None  # kind -> [layer][head] (core.interp.training.metrics.LOGGED_KINDS)
    snapshot: list | None = None  # [layer][head][q][k] attention (whole percent) on the snapshot sequence
    train_acc: float | None = None  # answer accuracy (modular addition, custom tasks)
    test_acc: float | None = None
    fourier_sparsity: float | None = None  # modular addition: share of W_E's power in top frequencies
    elapsed_s: float = 0.0

    @property
    def icl(self) -> float | None:
        """Repeated-half loss minus first-half loss (negative: the model uses its context)."""
        if self.first_half_loss is None or self.repeated_half_loss is None:
            return None
        return self.repeated_half_loss - self.first_half_loss

    def best(self, kind: str, layer_from: int = 0) -> float | None:
        """The highest score of a kind over heads in layers >= layer_from (None if not measured)."""
        if not self.scores or kind not in self.scores:
            return None
        rows = self.scores[kind][layer_from:]
        return max((max(row) for row in rows), default=None)


def _clean(value):
    """JSON has no NaN or inf: store them as None (a diverged run stays readable)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass
class TrainingLog:
    """meta (task, settings, model shape, snapshot tokens) and the checkpoints, oldest first."""

    meta: dict
    checkpoints: list[Checkpoint] = field(default_factory=list)

    @property
    def steps(self) -> list[int]:
        return [c.step for c in self.checkpoints]

    def at(self, step: int) -> Checkpoint:
        """The last checkpoint at or before `step` (the first one if step is earlier)."""
        found = [c for c in self.checkpoints if c.step <= step]
        return found[-1] if found else self.checkpoints[0]

    def to_dict(self) -> dict:
        return {"format": FORMAT, "meta": _clean(self.meta),
                "checkpoints": [_clean(asdict(c)) for c in self.checkpoints]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict) -> TrainingLog:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a training log (format {data.get('format')!r}, expected {FORMAT!r})")
        names = {f.name for f in fields(Checkpoint)}
        checkpoints = [Checkpoint(**{k: v for k, v in c.items() if k in names}) for c in data["checkpoints"]]
        return cls(dict(data["meta"]), checkpoints)

    @classmethod
    def load(cls, path: str | Path) -> TrainingLog:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())
