"""The bundled model's page: its evaluation report and model card, read once and cached."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.bundled.report import load_report
from core.models.loading import BUNDLED_DIR

CARD = Path(__file__).resolve().parents[2] / "core" / "bundled" / "model_card.md"


@st.cache_data(show_spinner=False)
def _load(folder: str, mtime: float) -> dict | None:
    # mtime is in the signature so that a retrained model refreshes the cache
    return load_report(folder)


def report() -> dict | None:
    """The bundled model's eval_report.json, or None when it has none."""
    path = BUNDLED_DIR / "eval_report.json"
    return _load(str(BUNDLED_DIR), path.stat().st_mtime) if path.is_file() else None


def model_card() -> str:
    return CARD.read_text() if CARD.is_file() else ""
