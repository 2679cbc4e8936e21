"""The settings of one fine-tuning run, in one frozen object: what the page's form produces, what
the trainer reads, and what a link reproduces.

Batch and sequence length set the work per step: 8 rows of 64 tokens (512 tokens) is enough for the
bundled model to learn the changed fact within 25 steps, at half the cost of 16 rows. The page's
default run (LoRA and full fine-tuning, 150 steps each, the old skills measured every 25) is sized to
finish in under 20 seconds on one CPU thread; benchmarks/bench_lora.py measures it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

METHODS = {"lora": "LoRA", "ia3": "IA3", "full": "Full fine-tuning"}
ROLES = {"attn_qkv": "attention q, k, v", "attn_out": "attention output", "mlp_in": "MLP in",
         "mlp_out": "MLP out"}
MAX_STEPS = 5_000
MAX_RANK = 4_096


@dataclass(frozen=True)
class FinetuneConfig:
    method: str = "lora"  # "lora", "ia3" or "full"
    roles: tuple[str, ...] = tuple(ROLES)  # which matrices LoRA / IA3 adapt (full FT: all weights)
    rank: int = 8  # LoRA r
    alpha: float = 16.0  # LoRA alpha; the update is scaled by alpha / r
    lr: float = 1e-3
    steps: int = 150
    batch: int = 8  # rows per step
    seq_len: int = 64  # tokens per row
    replay: float = 0.0  # share of each batch drawn from the original corpus
    seed: int = 0
    eval_every: int = 25  # measure the old skills every this many steps (0: only first and last)
    bf16: bool | None = None  # bfloat16 autocast; None: whatever measured faster on this CPU
    train_rows: int = 256  # rows packed from the task (and from the corpus, for replay)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {tuple(METHODS)}, not {self.method!r}")
        if self.method != "full" and not self.roles:
            raise ValueError("Pick at least one kind of matrix to adapt.")
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"Unknown roles {sorted(unknown)}; roles are {tuple(ROLES)}")
        if not (1 <= self.rank <= MAX_RANK and 1 <= self.steps <= MAX_STEPS and self.batch >= 1
                and self.seq_len >= 2 and self.train_rows >= 1 and self.eval_every >= 0):
            raise ValueError(f"rank must be in [1, {MAX_RANK}], steps in [1, {MAX_STEPS}], batch and "
                             "train_rows >= 1, seq_len >= 2, eval_every >= 0")
        if not 0 <= self.replay < 1:
            raise ValueError("replay must be in [0, 1)")
        if not (math.isfinite(self.lr) and self.lr > 0 and math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError("lr and alpha must be positive numbers")
