"""Background training: the server-wide limit and its queue, the heartbeat that stops an abandoned
run, Stop keeping what was learned, and a worker that never blocks the caller."""

from __future__ import annotations

import threading
import time

import pytest

from core.interp.training.architecture import ModelSettings
from core.interp.training.settings import TrainSettings
from core.interp.training.tasks import TaskSettings
from core.interp.training.worker import Job, Scheduler

SMALL = TrainSettings(task=TaskSettings(vocab=8, n_ctx=24, min_segment=4, max_segment=8),
                      model=ModelSettings(n_layers=1, n_heads=2, d_model=16), lr=1e-2, batch=8, steps=100_000,
                      log_every=50)


class Clock:
    """A clock the test moves by hand (heartbeats are compared against it)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _wait(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_one_worker_queues_the_second_run_and_starts_it_when_the_first_stops():
    sched = Scheduler(max_workers=1, heartbeat_timeout=1e9)
    first = sched.submit(SMALL)
    second = sched.submit(SMALL.with_changes(seed=1))
    _wait(lambda: first.steps_done >= 3)
    assert first.state == "running" and second.state == "queued"
    assert sched.position(second) == 1 and sched.position(first) is None and sched.running == 1
    first.stop()
    _wait(lambda: second.state == "running" and second.steps_done >= 1)
    assert first.state == "stopped"
    second.stop()
    _wait(lambda: not second.active)


def test_submit_returns_at_once_while_the_run_trains():
    sched = Scheduler(max_workers=1, heartbeat_timeout=1e9)
    start = time.monotonic()
    job = sched.submit(SMALL)
    assert time.monotonic() - start < 1.0 and job.active
    job.stop()
    _wait(lambda: not job.active)


def test_a_run_nobody_watches_stops_and_keeps_what_it_learned():
    clock = Clock()
    sched = Scheduler(max_workers=1, heartbeat_timeout=30.0, clock=clock)
    job = sched.submit(SMALL)
    _wait(lambda: job.steps_done >= 5)
    clock.now = 10.0
    job.beat()  # still watched at t = 10
    clock.now = 35.0  # 25 s since the beat: not stale yet
    time.sleep(0.1)
    assert job.state == "running"
    clock.now = 41.0  # 31 s since the last beat: the browser is gone
    _wait(lambda: not job.active)
    assert job.state == "abandoned" and job.result is not None
    assert job.result.ending == "stopped" and job.result.steps_done == job.steps_done
    assert job.checkpoints[-1].step == job.steps_done  # a final measurement where it stopped


def test_a_queued_run_nobody_watches_leaves_the_queue():
    clock = Clock()
    sched = Scheduler(max_workers=1, heartbeat_timeout=30.0, clock=clock)
    first = sched.submit(SMALL)
    waiting = sched.submit(SMALL)
    _wait(lambda: first.steps_done >= 1)
    clock.now = 20.0
    first.beat()
    clock.now = 45.0  # the queued run's last beat was at 0
    sched.tick()
    assert waiting.state == "abandoned" and sched.position(waiting) is None
    assert first.state == "running"
    first.stop()
    _wait(lambda: not first.active)


def test_two_workers_run_two_jobs_at_once():
    sched = Scheduler(max_workers=2, heartbeat_timeout=1e9)
    jobs = [sched.submit(SMALL.with_changes(seed=s)) for s in range(3)]
    _wait(lambda: jobs[0].steps_done >= 2 and jobs[1].steps_done >= 2)
    assert [j.state for j in jobs] == ["running", "running", "queued"] and sched.position(jobs[2]) == 1
    for job in jobs:
        job.stop()
    _wait(lambda: not any(j.active for j in jobs))
    assert jobs[2].state == "stopped" and jobs[2].steps_done == 0


def test_a_run_that_raises_is_marked_failed_and_frees_its_worker(monkeypatch):
    import core.interp.training.worker as W

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(W, "train", broken)
    sched = Scheduler(max_workers=1, heartbeat_timeout=1e9)
    job = sched.submit(SMALL)
    _wait(lambda: not job.active)
    assert job.state == "failed" and "boom" in job.error
    assert sched.running == 0


def test_job_runs_in_the_calling_thread_when_asked():
    job = Job(SMALL.with_changes(steps=4, log_every=2))
    job.run_here()
    assert job.state == "finished" and job.steps_done == 4 and [c.step for c in job.checkpoints] == [0, 2, 4]
    assert job.meta["snapshot_tokens"][0] == "<bos>"
    assert threading.current_thread() is threading.main_thread()


@pytest.mark.parametrize("value, expected", [("3", 3), ("0", 1), ("x", None)])
def test_the_worker_limit_comes_from_the_environment(monkeypatch, value, expected):
    import os

    from core.interp.training.worker import default_workers

    monkeypatch.setenv("LAB_TRAINING_WORKERS", value)
    assert default_workers() == (expected or max(1, (os.cpu_count() or 2) // 2))


def test_a_run_past_the_servers_time_limit_is_stopped_even_while_watched():
    from core.interp.training.worker import MAX_RUN_S

    clock = Clock()
    sched = Scheduler(max_workers=1, heartbeat_timeout=1e9, clock=clock)
    job = sched.submit(SMALL)
    _wait(lambda: job.steps_done >= 3)
    clock.now = MAX_RUN_S - 1  # watched and within the limit: it trains on
    job.beat()
    time.sleep(0.1)
    assert job.state == "running"
    clock.now = MAX_RUN_S + 1
    job.beat()  # still watched, but over the limit
    _wait(lambda: not job.active)
    assert job.state == "over_time" and job.result.ending == "stopped"
