"""Training in the background: one worker thread per run, a server-wide limit, and a heartbeat.

A web page must not block while a model trains, and a shared server must not let one visitor's
runs crowd out everyone else's. So:
- each run is a Job trained by its own worker thread (core.interp.training.loop.train), which never
  touches Streamlit: the page only reads the job's progress and log, and redraws on a timer;
- at most `max_workers` jobs train at once, server-wide (LAB_TRAINING_WORKERS, default: half the
  CPU cores, at least 1); the others wait in a first-come queue and can see their place in it.
  Each worker computes on its own thread: the app runs torch with one intra-op thread
  (ui.common.models), so two runs on two cores do not slow each other, and a third waits instead
  of sharing them;
- a job lives only while someone is watching it: the page (and the session it belongs to) calls
  `beat()` every few seconds; when no beat has come for `heartbeat_timeout` seconds (the browser was
  closed), the worker stops at its next step and a queued job is dropped, marked abandoned;
- `stop()` ends a run after its current step; what was learned so far is kept (the model, and a
  final checkpoint at the step it reached).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from core.interp.training.log import Checkpoint
from core.interp.training.loop import TrainedRun, train
from core.interp.training.settings import TIME_BUDGET_S, TrainSettings

State = Literal["queued", "running", "finished", "stopped", "abandoned", "over_time", "diverged", "failed"]
HEARTBEAT_TIMEOUT_S = 30.0  # no beat for this long: the browser is gone, the run stops
MAX_RUN_FACTOR = 2.0  # a run is stopped after this many times the time budget, whatever was estimated
MAX_RUN_S = MAX_RUN_FACTOR * TIME_BUDGET_S
ACTIVE_STATES = ("queued", "running")


def default_workers() -> int:
    """LAB_TRAINING_WORKERS, else half the CPU cores (at least 1)."""
    try:
        return max(1, int(os.environ.get("LAB_TRAINING_WORKERS", "")))
    except ValueError:
        return max(1, (os.cpu_count() or 2) // 2)


@dataclass
class Job:
    """One training run, queued or running or done. Read it from any thread; only its worker writes
    the progress fields."""

    settings: TrainSettings
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    state: State = "queued"
    steps_done: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # the log's meta, set when training starts
    result: TrainedRun | None = None
    error: str | None = None
    created: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _last_beat: float = field(default=0.0, repr=False)
    _started_at: float | None = field(default=None, repr=False)

    def __post_init__(self):
        self._last_beat = self.clock()

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def beat(self) -> None:
        """Someone is still watching (called by the page on every redraw)."""
        self._last_beat = self.clock()

    def stale(self) -> bool:
        return self.clock() - self._last_beat > self.heartbeat_timeout

    def stop(self) -> None:
        """Ask the worker to end the run after its current step (a queued job just leaves the queue)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def should_stop(self) -> bool:
        return self._stop.is_set() or self.stale() or self.over_time()

    def over_time(self) -> bool:
        """Running for longer than MAX_RUN_S (an estimate of the run's time can be wrong)."""
        return self._started_at is not None and self.clock() - self._started_at > MAX_RUN_S

    def run_here(self) -> None:
        """Train in the calling thread (the worker's body; tests call it directly)."""
        self.state = "running"
        self._started_at = self.clock()
        try:
            result = train(self.settings, run_id=self.id, on_start=self._started,
                           on_checkpoint=self.checkpoints.append,
                           on_step=self._progress, should_stop=self.should_stop)
        except Exception as err:  # a bug must not kill the server: the page shows what went wrong
            self.error = f"{type(err).__name__}: {err}"
            self.traceback = traceback.format_exc()
            self.state = "failed"
            return
        self.result = result
        self.checkpoints = result.log.checkpoints
        if result.ending == "diverged":
            self.state = "diverged"
        elif result.ending == "stopped":
            self.state = ("stopped" if self._stop.is_set() else "over_time" if self.over_time()
                          else "abandoned")
        else:
            self.state = "finished"

    def _started(self, log) -> None:
        self.meta = log.meta

    def _progress(self, steps_done: int) -> None:
        self.steps_done = steps_done


class Scheduler:
    """A server-wide queue: at most max_workers jobs train at once, the rest wait their turn."""

    def __init__(self, max_workers: int | None = None, heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic):
        self.max_workers = max_workers or default_workers()
        self.heartbeat_timeout = heartbeat_timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._queue: list[Job] = []
        self._running: list[Job] = []

    def submit(self, settings: TrainSettings) -> Job:
        """Queue a run (already checked by settings.problems); it starts as soon as a worker is free."""
        job = Job(settings, clock=self.clock, heartbeat_timeout=self.heartbeat_timeout)
        with self._lock:
            self._queue.append(job)
        self._dispatch()
        return job

    def position(self, job: Job) -> int | None:
        """1 for the next job to start, 2 after it, ...; None once it is no longer waiting."""
        with self._lock:
            return self._queue.index(job) + 1 if job in self._queue else None

    @property
    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def _dispatch(self) -> None:
        """Start queued jobs while workers are free; drop queued jobs nobody watches any more."""
        with self._lock:
            for job in [j for j in self._queue if j.stop_requested or j.stale()]:
                self._queue.remove(job)
                job.state = "stopped" if job.stop_requested else "abandoned"
            starting = []
            while self._queue and len(self._running) < self.max_workers:
                job = self._queue.pop(0)
                job.state = "running"
                self._running.append(job)
                starting.append(job)
        for job in starting:
            threading.Thread(target=self._work, args=(job,), daemon=True, name=f"training-{job.id}").start()

    def _work(self, job: Job) -> None:
        try:
            job.run_here()
        finally:
            with self._lock:
                self._running.remove(job)
            self._dispatch()

    def tick(self) -> None:
        """Drop stale queued jobs now (the page calls this while it waits in the queue)."""
        self._dispatch()


_scheduler: Scheduler | None = None
_scheduler_lock = threading.Lock()


def scheduler() -> Scheduler:
    """The one scheduler of this server process."""
    global _scheduler
    with _scheduler_lock:
        if _scheduler is None:
            _scheduler = Scheduler()
        return _scheduler
