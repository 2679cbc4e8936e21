"""Training page: how long each proven preset takes on one thread, what one training step and one
logged measurement cost, and the bundled model's replayed timeline.

Each preset is trained from scratch exactly as its slow test does (tests/unit/test_training_presets.py
asserts what it shows; this module only times it). Two times are recorded: the CPU time of the one
training thread (time.process_time), which other programs on a busy machine do not inflate, and the
wall time, which they do (the load average is recorded beside every figure). The page quotes the
presets' `seconds` (core.interp.training.presets), which should match the CPU figures here.
"""

from __future__ import annotations

import time

import torch

from benchmarks import Result
from core.interp.training.measure import frozen_copy, measure
from core.interp.training.presets import PRESETS
from core.interp.training.settings import TrainSettings, estimate
from core.interp.training.tasks import build_task


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def _preset_results() -> list[Result]:
    from core.interp.training.loop import train
    from core.interp.training.phase import grok_verdict, induction_verdict
    from core.interp.training.trap import copy_mechanism

    out = []
    for preset in PRESETS.values():
        if not preset.proven:
            continue
        run, cpu, wall = _timed(lambda p=preset: train(p.settings, run_id=f"bench-{p.key}"))
        ind, grok = induction_verdict(run.log), grok_verdict(run.log)
        what = []
        if ind is not None:
            what.append(f"induction {ind.kind}" + (f" at step {ind.formed_step}" if ind.formed_step else ""))
        if grok is not None:
            what.append(f"{grok.kind}, gap closed {grok.gap_closed}")
        if preset.settings.task.kind == "fixed_offset":
            what.append(copy_mechanism(run.log, preset.settings.task.vocab).kind)
        task = build_task(preset.settings.task)
        est = estimate(preset.settings, task.d_vocab, task.n_ctx).seconds
        out.append(Result(f"preset {preset.key}: {preset.settings.steps:,} steps (CPU time)", cpu, "s",
                          goal="induction preset <= 60 s on one thread",
                          note=f"wall {wall:.0f} s; {'; '.join(what)}; page says {preset.seconds:.0f} s; "
                               f"estimate {est:.0f} s", threads=1))
    return out


def _step_results() -> list[Result]:
    from core.interp.training.architecture import build_model
    from core.interp.training.loop import optimizer_for
    from core.models.loss import next_token_loss

    s: TrainSettings = PRESETS["induction"].settings
    task = build_task(s.task)
    model = build_model(s.model, task.d_vocab, task.n_ctx, s.seed)
    opt = optimizer_for(model, s)
    batches = task.batches(0, s.batch)

    def step():
        batch = next(batches)
        loss = next_token_loss(model(input_ids=batch.tokens).logits, batch.tokens, mask=batch.mask)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    _, cpu, wall = _timed(lambda: [step() for _ in range(50)])
    lm = frozen_copy(model, task, spec="bench")
    _, m_cpu, m_wall = _timed(lambda: [measure(frozen_copy(model, task, spec="bench"), task, 0, None, 0)
                                       for _ in range(10)])
    del lm
    return [Result("induction preset: one training step (CPU time)", 1000 * cpu / 50, "ms", threads=1,
                   note=f"wall {1000 * wall / 50:.1f} ms"),
            Result("induction preset: one logged measurement (CPU time)", 1000 * m_cpu / 10, "ms", threads=1,
                   note=f"wall {1000 * m_wall / 10:.1f} ms; head scores, ICL probe, snapshot, test loss")]


def _timeline_results() -> list[Result]:
    from core.bundled.timeline import TIMELINE_PATH
    from core.interp.training.log import TrainingLog

    if not TIMELINE_PATH.is_file():
        return []
    log = TrainingLog.load(TIMELINE_PATH)
    return [Result("bundled timeline: retrain with logging (wall, recorded when written)",
                   float(log.meta.get("wall_time_s", float("nan"))), "s", threads=log.meta.get("threads"),
                   note=f"{len(log.checkpoints)} logged steps; file "
                        f"{TIMELINE_PATH.stat().st_size / 1e3:.0f} kB; the machine was shared while it ran")]


def run() -> list[Result]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _step_results() + _preset_results() + _timeline_results()
    finally:
        torch.set_num_threads(threads)
