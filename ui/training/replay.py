"""The bundled model's own training, replayed from assets/bundled/timeline.json.

core.bundled.timeline retrained the bundled recipe step for step and measured it every 100 steps;
this view draws that log with the same charts and slider as a live run, so a learner can scrub to
the steps where its previous-token and induction heads formed.
"""

from __future__ import annotations

import streamlit as st

from core.bundled.timeline import TIMELINE_PATH
from core.interp.training.log import TrainingLog
from ui.common.page import show_problem
from ui.training.live import log_view
from ui.training.views import replay_end_words


@st.cache_data(show_spinner=False, max_entries=2)  # one file; a second entry only when it is rewritten
def _load(path: str, mtime: float) -> dict:
    return TrainingLog.load(path).to_dict()


def bundled_timeline() -> TrainingLog | None:
    """The committed timeline, or None (after saying why) if it is missing or unreadable."""
    try:
        return TrainingLog.from_dict(_load(str(TIMELINE_PATH), TIMELINE_PATH.stat().st_mtime))
    except (OSError, ValueError, KeyError, TypeError) as err:
        show_problem(f"The bundled model's timeline cannot be read ({type(err).__name__}). Rebuild it with: "
                     "python -m core.bundled.timeline")
        return None


def replay_view() -> None:
    log = bundled_timeline()
    if log is None:
        return
    meta = log.meta
    recipe = meta.get("recipe", {})
    st.markdown(
        f"The bundled model ({meta.get('n_layers')} layers x {meta.get('n_heads')} heads, d_model "
        f"{meta.get('d_model')}) was trained for {recipe.get('steps', 0):,} steps of {recipe.get('batch')} "
        f"rows of {recipe.get('n_ctx')} tokens from the world's corpus. It was retrained with the same "
        f"recipe and seed and measured every {meta.get('log_every')} steps. Test loss is on corpus rows it "
        "never trained on.")
    end = replay_end_words(meta, log.checkpoints[-1].scores if log.checkpoints else None)
    if end:
        st.caption(end)
    log_view(log, key="train_bundled", snapshot_tokens=meta.get("snapshot_tokens"))
