"""Use a trained model on every other page of this session.

`register_trained(run, run_id)` wraps a frozen copy of the run's model as a HookedLM (the object
every page inspects) with the spec "trained:<run id>" and keeps it in this session
(ui.common.session_models), where the sidebar's model picker lists it. Training goes on, or
another run starts, without changing the copy.
"""

from __future__ import annotations

from core.interp.training.loop import TrainedRun
from core.interp.training.measure import frozen_copy
from core.models import HookedLM
from ui.common.session_models import SESSION_PREFIX, add_session_model, session_model


def spec_for(run_id: str) -> str:
    return f"{SESSION_PREFIX}{run_id}"


def register_trained(run: TrainedRun, run_id: str) -> HookedLM:
    """Make the run's model pickable in this session's sidebar; returns it."""
    spec = spec_for(run_id)
    kept = session_model(spec)
    if kept is not None:
        return kept
    name = (f"Trained here ({run.task.kind.replace('_', ' ')}, {run.settings.model.describe()}, "
            f"{run.steps_done:,} steps)")
    return add_session_model(frozen_copy(run.model, run.task, spec=spec, name=name))


def trained_model(spec: str) -> HookedLM | None:
    return session_model(spec)
