"""Training on the LoRA page: a live status box with a Stop button, and what survives a stop.

Pressing Stop (or touching any other control) makes Streamlit rerun the script, which interrupts
the training loop at its next progress update. The fine-tuners are kept in session state while they
run, so the next run of the script keeps what they learned so far instead of losing it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from core.interp.finetune import FineTuner, Progress
from core.interp.finetune_tasks import Task, make_task
from core.interp.forgetting import SKILL_LABELS, SkillSuite, summarize
from ui.charts.lora import loss_chart
from ui.lora_controls import Settings
from ui.lora_frames import loss_frame
from ui.page import show_problem

RESULT_KEY, LIVE_KEY, LOG_KEY = "lora_result", "lora_live", "lora_log"
UPDATE_S = 0.3  # at most this often the live status is redrawn
MAX_LOG = 8
FULL_FT_BUDGET_BYTES = 1.5e9  # full FT holds weights, gradients and two Adam moments: 16 bytes a parameter


@dataclass
class LoraResult:
    """One press of Train (plus any adapter loaded afterwards): label -> fitted FineTuner."""

    settings: Settings | None
    spec: str
    task: Task
    suite: SkillSuite
    runs: dict = field(default_factory=dict)
    stopped: bool = False
    analysis: dict = field(default_factory=dict)  # memo of computed views, per run label


def _log(result: LoraResult) -> None:
    """Remember each run's curve, so later runs (other rank, replay) can be drawn next to it."""
    log = st.session_state.setdefault(LOG_KEY, [])
    for label, run in result.runs.items():
        if len(getattr(run, "history_", [])) < 2 or result.settings is None:
            continue
        c = run.config
        extra = f", r={c.rank}" if c.method == "lora" else ""
        name = f"{label.split(' r=')[0]}{extra}, lr {c.lr:g}, replay {c.replay:.0%}, {c.steps} steps"
        log.append({"name": name, "spec": result.spec, "task": result.task.key,
                    "history": list(run.history_), "changes": summarize(run.history_)})
    del log[:-MAX_LOG]


def recover_interrupted(lm) -> None:
    """If the last script run was interrupted mid-training, keep what the fine-tuners learned."""
    live = st.session_state.pop(LIVE_KEY, None)
    if live is None or live.spec != lm.spec:
        return
    live.runs = {k: r for k, r in live.runs.items() if getattr(r, "steps_done_", 0) > 0}
    if not live.runs:
        return
    for run in live.runs.values():
        run.measure_last(live.suite)
    live.stopped = True
    st.session_state[RESULT_KEY] = live
    _log(live)


def _skills_line(skills: dict[str, float]) -> str:
    return " · ".join(f"{SKILL_LABELS[k]} {v:.2f}" for k, v in skills.items() if v == v)


def train_live(lm, settings: Settings) -> LoraResult:
    """Fine-tune one copy per method in settings, with live progress; also stored in RESULT_KEY."""
    task = make_task(settings.task, seed=settings.lora.seed)
    suite = SkillSuite.build(lm, task, seed=settings.lora.seed)
    result = LoraResult(settings, lm.spec, task, suite)
    configs = settings.configs()
    need = 16 * lm.cfg.n_params
    full = [k for k, c in configs.items() if c.method == "full"]
    if full and need > FULL_FT_BUDGET_BYTES:
        show_problem(f"Full fine-tuning of {lm.name} would need about {need / 1e9:.1f} GB of memory "
                     "(weights, gradients and Adam's two moments), more than this app allows; LoRA and "
                     "IA3 only train small adapters, so they run.")
        configs = {k: c for k, c in configs.items() if k not in full}
    total = sum(c.steps for c in configs.values())
    with st.status("Fine-tuning private copies of the model (the shared one never changes)...",
                   expanded=True) as status:
        st.button("Stop", key="lora_stop", icon=":material/stop_circle:",
                  help="Stop now and keep what was learned so far.")
        bar, line, chart = st.progress(0.0), st.empty(), st.empty()
        done_before, last = 0, {"t": 0.0}
        st.session_state[LIVE_KEY] = result
        for label, cfg in configs.items():
            tuner = FineTuner(cfg)
            result.runs[label] = tuner

            def progress(p: Progress, label=label, tuner=tuner, before=done_before) -> None:
                if time.monotonic() - last["t"] < UPDATE_S and p.step < p.steps:
                    return
                last["t"] = time.monotonic()
                bar.progress((before + p.step) / total,
                             text=f"{label}: step {p.step} / {p.steps}, loss {p.loss:.3f}, {p.seconds:.1f} s")
                if tuner.history_:
                    line.caption(f"Old skills at step {tuner.history_[-1][0]}: "
                                 + _skills_line(tuner.history_[-1][1]))
                losses = {k: r.losses_ for k, r in result.runs.items() if getattr(r, "losses_", None)}
                chart.altair_chart(loss_chart(loss_frame(losses)))

            tuner.fit(lm, task, suite, callback=progress)
            done_before += cfg.steps
        st.session_state.pop(LIVE_KEY, None)
        seconds = sum(r.seconds_ for r in result.runs.values())
        status.update(label=f"Fine-tuned {len(configs)} copies in {seconds:.1f} s: {settings.describe()}",
                      state="complete", expanded=False)
    st.session_state[RESULT_KEY] = result
    _log(result)
    return result


def current_result(lm) -> LoraResult | None:
    result = st.session_state.get(RESULT_KEY)
    return result if result is not None and result.spec == lm.spec else None


def run_summary(result: LoraResult) -> pd.DataFrame:
    """One row per run: method, steps, seconds, trainable parameters, task accuracy before -> after."""
    rows = []
    for label, run in result.runs.items():
        history = getattr(run, "history_", [])
        task = (f"{history[0][1]['task_accuracy']:.2f} → {history[-1][1]['task_accuracy']:.2f}"
                if history else "")
        rows.append({"run": label, "steps": getattr(run, "steps_done_", None),
                     "seconds": round(getattr(run, "seconds_", 0.0), 1),
                     "trainable parameters": getattr(run, "n_trainable_", None), "new task accuracy": task})
    return pd.DataFrame(rows)
