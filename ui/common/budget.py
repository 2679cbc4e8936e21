"""What this browser session holds, for the one memory budget (core.models.budget).

Pages that keep something big in the session (a fine-tuned copy, an SAE, activations) register it
with `hold(key, nbytes)` and drop it with `release(key)`; `held_bytes(except_key)` is what
check_fits weighs a new allocation against.
"""

from __future__ import annotations

import streamlit as st

from core.models.budget import check_fits

LEDGER_KEY = "memory_ledger"  # {key: bytes}


def _ledger() -> dict[str, int]:
    return st.session_state.setdefault(LEDGER_KEY, {})


def held_bytes(except_key: str | None = None) -> int:
    return sum(v for k, v in _ledger().items() if k != except_key)


def hold(key: str, nbytes: int) -> None:
    _ledger()[key] = int(nbytes)


def release(key: str) -> None:
    _ledger().pop(key, None)


def check_session_fits(key: str, need_bytes: float, *, what: str, lower: str) -> None:
    """check_fits against everything this session holds except `key` (which the new thing replaces)."""
    check_fits(need_bytes, what=what, lower=lower, held_bytes=held_bytes(except_key=key))
