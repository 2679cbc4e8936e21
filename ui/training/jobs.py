"""This session's training run: started from the page, kept in the session, watched by a heartbeat.

The run is a core.interp.training.worker.Job in st.session_state[JOB_KEY], so reruns and page
switches find it again. Two things keep it alive (Job.beat):
- the page's live panel, a fragment that redraws every few seconds while the run is active;
- a small keep-alive thread of this module that, every KEEPALIVE_S seconds, asks Streamlit's
  runtime whether the run's browser session is still connected. It covers page switches (the
  panel is not drawn then, but the browser is still there). When the tab is closed the session
  disconnects, the beats stop, and the worker stops the run HEARTBEAT_TIMEOUT_S later.
The worker thread itself never calls Streamlit.

In tests (LAB_TRAINING_SYNC=1) a started run trains at once in the script's own thread, so an
AppTest sees it finished after the click that started it.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from core.interp.training.settings import TrainSettings, problems, run_cost
from core.interp.training.tasks import build_task
from core.interp.training.worker import Job, scheduler
from core.models.budget import session_budget_bytes
from ui.common.budget import held_bytes, hold, release

JOB_KEY = "training_job"
BUDGET_KEY = "training"  # this page's entry in the session's memory ledger
SYNC_ENV = "LAB_TRAINING_SYNC"
KEEPALIVE_S = 5.0

_watched: dict[str, tuple[str, Job]] = {}  # job id -> (session id, job)
_watch_lock = threading.Lock()
_watcher: threading.Thread | None = None


def synchronous() -> bool:
    return os.environ.get(SYNC_ENV, "").strip() == "1"


def current_job() -> Job | None:
    return st.session_state.get(JOB_KEY)


def setting_problems(settings: TrainSettings) -> list[str]:
    """settings.problems with this session's memory left (besides a previous run it would replace)."""
    return problems(settings, memory_budget_bytes=session_budget_bytes() - held_bytes(except_key=BUDGET_KEY))


def start(settings: TrainSettings) -> Job:
    """Queue a run for this session (replacing its previous one), or train it here in tests."""
    old = current_job()
    if old is not None and old.active:
        old.stop()
    task = build_task(settings.task)
    hold(BUDGET_KEY, run_cost(settings, task).bytes)
    if synchronous():
        job = Job(settings)
        st.session_state[JOB_KEY] = job
        job.run_here()
        return job
    job = scheduler().submit(settings)
    st.session_state[JOB_KEY] = job
    _watch(job)
    return job


def settle(job: Job) -> None:
    """A run that ended holds only its model (float32 weights) in the session's ledger, not its
    training peak."""
    if job.result is not None and not job.active:
        hold(BUDGET_KEY, 4 * sum(p.numel() for p in job.result.model.parameters()))


def forget() -> None:
    """Drop this session's run (stopping it if it still trains)."""
    job = st.session_state.pop(JOB_KEY, None)
    if job is not None and job.active:
        job.stop()
    release(BUDGET_KEY)


def _session_connected(session_id: str) -> bool:
    from streamlit.runtime import Runtime

    return Runtime.exists() and Runtime.instance().is_active_session(session_id)


def _keep_alive_loop() -> None:
    while True:
        time.sleep(KEEPALIVE_S)
        try:
            _beat_connected()
        except Exception:  # one bad round must not end the thread (every watched run would stop)
            logging.getLogger(__name__).exception("training keep-alive round failed")


def _beat_connected() -> None:
    with _watch_lock:
        entries = list(_watched.items())
    for job_id, (session_id, job) in entries:
        if not job.active:
            with _watch_lock:
                _watched.pop(job_id, None)
        elif _session_connected(session_id):
            job.beat()


def _watch(job: Job) -> None:
    """Beat for `job` while this browser session stays connected (see the module docstring)."""
    global _watcher
    ctx = get_script_run_ctx()
    if ctx is None:
        return
    with _watch_lock:
        _watched[job.id] = (ctx.session_id, job)
        if _watcher is None or not _watcher.is_alive():
            _watcher = threading.Thread(target=_keep_alive_loop, daemon=True, name="training-keepalive")
            _watcher.start()
