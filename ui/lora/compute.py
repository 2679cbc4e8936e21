"""Training on the LoRA page: a live status box with a Stop button, and what survives a stop.

Pressing Stop (or touching any other control) makes Streamlit rerun the script, which interrupts
the training loop at its next progress update. The fine-tuners are kept in session state while they
run, so the next run of the script keeps what they learned so far instead of losing it.

Every run holds a whole copy of the model in session state, so the page keeps few of them: the runs
of the last press of Train (at most MAX_RUNS, a loaded adapter included), and only while their
copies fit COPY_BUDGET_BYTES. Earlier runs keep only their forgetting curves (LOG_KEY).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from core.interp.finetune.forgetting import SKILL_LABELS, SkillSuite, summarize
from core.interp.finetune.methods import (  # COPY_BUDGET_BYTES: all kept copies, with one's training state
    COPY_BUDGET_BYTES,
    FineTuner,
    MemoryBudgetError,
    Progress,
    check_copy_budget,
    model_bytes,
)
from core.interp.finetune.tasks import Task, make_task
from ui.common.page import show_problem
from ui.lora.charts import loss_chart
from ui.lora.controls import Settings
from ui.lora.frames import loss_frame

RESULT_KEY, LIVE_KEY, LOG_KEY = "lora_result", "lora_live", "lora_log"
UPDATE_S = 0.3  # at most this often the live status is redrawn
MAX_LOG = 8
MAX_RUNS = 3  # fine-tuned copies kept in session state (each is a whole model)


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


def memory_note(lm) -> str:
    """What the page keeps in memory, said on the page."""
    return (f"Each fine-tuned copy holds a whole copy of the model ({model_bytes(lm) / 1e6:,.1f} MB here), "
            f"so this page keeps at most {MAX_RUNS} of them, those of the last press of **Train** (a loaded "
            f"adapter included), within {COPY_BUDGET_BYTES / 1e9:.1f} GB. Earlier runs keep only their "
            "forgetting curves.")


def _affordable(lm, configs: dict) -> dict:
    """The configs whose copies fit the budget one after the other (at most MAX_RUNS); a message
    for each refused one."""
    kept, held = {}, 0
    for label, cfg in configs.items():
        if len(kept) == MAX_RUNS:
            show_problem(f"{label} was not trained: this page keeps at most {MAX_RUNS} fine-tuned copies.")
            continue
        try:
            check_copy_budget(lm, cfg.method, COPY_BUDGET_BYTES, held)
        except MemoryBudgetError as err:
            show_problem(f"{label} was not trained. {err} LoRA and IA3 copy the weights once and train only "
                         "small adapters; full fine-tuning needs four times the model's size.")
            continue
        kept[label] = cfg
        held += model_bytes(lm)  # what stays once it has trained (gradients and moments are freed)
    return kept


def train_live(lm, settings: Settings) -> LoraResult | None:
    """Fine-tune one copy per method in settings, with live progress; also stored in RESULT_KEY.

    The previous result's copies are let go first; None if no copy fits the memory budget."""
    task = make_task(settings.task, seed=settings.lora.seed)
    configs = _affordable(lm, settings.configs())
    if not configs:
        return None
    st.session_state.pop(RESULT_KEY, None)  # the last result's copies go before new ones are made
    suite = SkillSuite.build(lm, task, seed=settings.lora.seed)
    result = LoraResult(settings, lm.spec, task, suite)
    total = sum(c.steps for c in configs.values())
    with st.status("Fine-tuning private copies of the model (the shared one never changes)...",
                   expanded=True) as status:
        st.button("Stop", key="lora_stop", icon=":material/stop_circle:",
                  help="Stop now and keep what was learned so far.")
        bar, line, chart = st.progress(0.0), st.empty(), st.empty()
        done_before, last, held = 0, {"t": 0.0}, 0
        st.session_state[LIVE_KEY] = result
        for label, cfg in configs.items():
            tuner = FineTuner(cfg, max_bytes=COPY_BUDGET_BYTES - held)
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
            held += model_bytes(lm)
        st.session_state.pop(LIVE_KEY, None)
        seconds = sum(r.seconds_ for r in result.runs.values())
        status.update(label=f"Fine-tuned {len(configs)} copies in {seconds:.1f} s: {settings.describe()}",
                      state="complete", expanded=False)
    st.session_state[RESULT_KEY] = result
    _log(result)
    return result


def make_room(lm, result: LoraResult | None, keep_out: str, need: int) -> tuple[list[str], float]:
    """Which runs of result (oldest first; `keep_out` is being replaced) must go so that one more copy
    needing `need` bytes fits, and the bytes then left for it: at most MAX_RUNS copies in the budget."""
    others = [k for k in (result.runs if result else ()) if k != keep_out]
    size = model_bytes(lm)
    drop = []
    while others and (len(others) + 1 > MAX_RUNS or len(others) * size + need > COPY_BUDGET_BYTES):
        drop.append(others.pop(0))
    return drop, COPY_BUDGET_BYTES - len(others) * size


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
