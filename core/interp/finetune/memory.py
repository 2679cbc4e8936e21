"""What a fine-tuned copy costs in memory, known before the copy is made.

The shared model is never trained: every run works on a copy, and a copy holds all the model's
weights again. Full fine-tuning also holds, while it trains, a gradient and Adam's two moments for
every weight: four times the model. A LoRA or IA3 adapter adds its own small matrices:
r * (d_in + d_out) numbers per adapted matrix (LoRA), d_out or d_in (IA3). All of it is computed
from sizes and shapes and checked against the session's memory budget (core.models.budget) before a
single tensor is allocated, so no setting, link or uploaded file can make the shared server run out.
"""

from __future__ import annotations

import itertools

from core.interp.finetune.config import METHODS
from core.models.budget import check_fits

FLOAT32_BYTES = 4


def model_bytes(lm) -> int:
    """Bytes of the model's parameters and buffers: what one deep copy of it allocates."""
    tensors = {id(t): t for t in itertools.chain(lm.model.parameters(), lm.model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def copy_bytes(lm, method: str) -> int:
    """Bytes a fine-tuned copy needs while it trains: the copied weights and buffers, plus, for full
    fine-tuning, a gradient and Adam's two moments for every parameter. The adapter itself is
    counted separately (`adapter_bytes`)."""
    size = model_bytes(lm)
    if method == "full":
        params = {id(p): p for p in lm.model.parameters()}.values()
        size += 3 * sum(p.numel() * p.element_size() for p in params)
    return size


def adapter_bytes(n_adapter_params: int, training: bool = False) -> int:
    """float32 bytes of an adapter's parameters (times 4 while training: gradient, two moments)."""
    return FLOAT32_BYTES * n_adapter_params * (4 if training else 1)


def check_copy_budget(lm, method: str, budget_bytes: float | None = None, held_bytes: float = 0,
                      extra_bytes: int = 0) -> int:
    """The bytes a `method` copy of lm needs (plus `extra_bytes`, e.g. its adapter); raises
    core.models.budget.MemoryBudgetError if, next to `held_bytes` the session already holds, it
    would exceed budget_bytes (None: the session budget; math.inf: no limit)."""
    need = copy_bytes(lm, method) + extra_bytes
    what = ("weights, gradients and Adam's two moments" if method == "full"
            else "a whole copy of its weights")
    check_fits(need, what=f"{METHODS.get(method, method)} of {lm.name} ({what})",
               lower=("LoRA or IA3, which copy the weights once and train only small adapters, or fewer "
                      "runs at once" if method == "full" else "fewer runs at once, or a smaller model"),
               held_bytes=held_bytes, budget_bytes=budget_bytes)
    return need
