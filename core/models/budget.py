"""One memory budget for what a browser session may hold on the shared server.

The server is shared: one session's trained copies, SAEs and cached activations must not push the
others out. Every place that allocates memory from a user's choice (a fine-tuned copy, an uploaded SAE,
a probe CSV, a trained model) first computes what it will need (from sizes and shapes, before any
tensor exists) and asks `check_fits`, which raises MemoryBudgetError with a message that says what to
lower. The budget is LAB_SESSION_MEMORY_MB (default 1,500 MB).
"""

from __future__ import annotations

import math
import os

DEFAULT_SESSION_MB = 1500


class MemoryBudgetError(ValueError):
    """Something would not fit the session's memory budget; the message says by how much and what
    to lower."""


def session_budget_bytes() -> int:
    """The budget per session: LAB_SESSION_MEMORY_MB (a malformed value means the default)."""
    try:
        mb = float(os.environ.get("LAB_SESSION_MEMORY_MB", DEFAULT_SESSION_MB))
    except ValueError:
        mb = DEFAULT_SESSION_MB
    if not math.isfinite(mb):
        mb = DEFAULT_SESSION_MB
    return int(max(mb, 1) * 1e6)


def check_fits(need_bytes: float, *, what: str, lower: str, held_bytes: float = 0,
               budget_bytes: float | None = None) -> None:
    """Raise MemoryBudgetError if `need_bytes` next to `held_bytes` exceeds the budget.

    what: the thing being allocated ("this SAE (d_sae 16,384)"); lower: the advice ("a smaller
    dictionary size")."""
    budget = session_budget_bytes() if budget_bytes is None else budget_bytes
    if need_bytes + held_bytes <= budget:
        return
    held = f" next to the {held_bytes / 1e6:,.0f} MB this session already holds" if held_bytes else ""
    raise MemoryBudgetError(
        f"{what[:1].upper() + what[1:]} would need about {need_bytes / 1e6:,.0f} MB{held}, over this "
        f"server's budget of {budget / 1e6:,.0f} MB per session. Try {lower}.")
