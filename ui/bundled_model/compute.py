"""The bundled model's page: its evaluation report and model card, read once and cached, and the
"Try it" continuation, cached per prompt and sampling setting."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch

from core.bundled.report import load_report
from core.models import HookedLM
from core.models.loading import BUNDLED_DIR
from ui.common.cache import cache_on_model

CARD = Path(__file__).resolve().parents[2] / "core" / "bundled" / "model_card.md"


@st.cache_data(max_entries=4, show_spinner=False)
def _load(folder: str, mtime: float) -> dict | None:
    # mtime is in the signature so that a retrained model refreshes the cache
    return load_report(folder)


def report() -> dict | None:
    """The bundled model's eval_report.json, or None when it has none."""
    path = BUNDLED_DIR / "eval_report.json"
    return _load(str(BUNDLED_DIR), path.stat().st_mtime) if path.is_file() else None


def model_card() -> str:
    return CARD.read_text() if CARD.is_file() else ""


@cache_on_model(max_entries=64, show_spinner="Generating...")
def continuation(lm: HookedLM, tokens: tuple[int, ...], n_new: int, temperature: float, seed: int) -> str:
    """The new text after the prompt `tokens` (ids, BOS first): computed once per setting, so moving
    another widget of the page does not sample again."""
    out = lm.generate(torch.tensor([tokens]), max_new_tokens=n_new, temperature=temperature, seed=seed)
    return out.new_text
