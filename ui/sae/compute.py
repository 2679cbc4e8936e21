"""Training an SAE on the page: live status, a Stop button, and what survives a stop.

Pressing Stop (or touching any other control) makes Streamlit rerun the script, which interrupts
the training loop at its next progress update. The trainer object is kept in session state while
it runs, so the next run of the script finishes it from where it stopped instead of losing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd
import streamlit as st

from core.interp.sae.model import SAE
from core.interp.sae.report import Report, report
from core.interp.sae.splice import splice_losses
from core.interp.sae.train import SAETrainer, TrainPoint, sweep_configs
from ui.sae.charts import training_curves
from ui.sae.controls import (
    DEFAULT_DOCS,
    READING,
    Experiment,
    activations,
    attributes,
    splice_batch,
)

RUN_KEY, LIVE_KEY, POINTS_KEY = "sae_run_result", "sae_live", "sae_points"
UPDATE_S = 0.4  # at most this often the live status is redrawn


@dataclass
class SAERun:
    """One SAE on the page: how it was made (experiment None if uploaded) and its report."""

    experiment: Experiment | None
    sae: SAE
    report: Report
    history: list[TrainPoint] = field(default_factory=list)
    stopped: bool = False
    steps: int = 0  # optimiser steps taken
    seconds: float = 0.0
    acts_per_second: float = 0.0
    n_docs_measured: int = DEFAULT_DOCS  # the corpus setting an uploaded SAE is measured on

    @property
    def n_docs(self) -> int:
        """The corpus setting its activations come from."""
        return self.experiment.n_docs if self.experiment else self.n_docs_measured


def history_frame(history: list[TrainPoint]) -> pd.DataFrame:
    """Long form (step, metric, value) of the training metrics, spliced loss where measured."""
    rows = []
    for p in history:
        rows += [(p.step, "explained_variance", p.explained_variance), (p.step, "l0", p.l0),
                 (p.step, "dead_fraction", p.dead_fraction)]
        if p.splice is not None:
            rows.append((p.step, "loss_recovered", p.splice.recovered))
    return pd.DataFrame(rows, columns=["step", "metric", "value"])


def analyse(lm, sae: SAE, hook_name: str, n_docs: int) -> Report:
    _, heldout = activations(lm, lm.spec, hook_name, n_docs)
    return report(sae, heldout, attributes(lm, lm.spec), lm.cfg.d_vocab, lm=lm,
                  splice_tokens=splice_batch(lm, lm.spec))


def _remember(run: SAERun, source: str, setting: float) -> None:
    """Add a point to the sparsity-vs-reconstruction chart."""
    r = run.report
    point = {"hook": run.sae.cfg.hook_name, "model": run.sae.cfg.model_spec,
             "architecture": run.sae.cfg.architecture,
             "l0": r.recon.l0, "explained_variance": r.recon.explained_variance,
             "loss_recovered": r.splice.recovered if r.splice else float("nan"),
             "found": r.n_found, "setting": setting, "source": source,
             "label": run.experiment.label() if run.experiment else "uploaded"}
    st.session_state.setdefault(POINTS_KEY, []).append(point)


def _finish(lm, exp: Experiment, trainer: SAETrainer, stopped: bool) -> SAERun:
    trainer.finish()
    run = SAERun(exp, trainer.sae_, analyse(lm, trainer.sae_, exp.hook_name, exp.n_docs),
                 list(trainer.history_), stopped, trainer.steps_done_, trainer.seconds_,
                 trainer.acts_per_second_)
    _remember(run, "your SAEs", exp.config.k if exp.config.architecture == "topk"
              else exp.config.l1_coefficient)
    return run


def recover_interrupted(lm) -> None:
    """If the last script run was interrupted mid-training, keep the SAE it had learned so far."""
    live = st.session_state.pop(LIVE_KEY, None)
    if live is None:
        return
    exp, trainer = live
    if getattr(trainer, "steps_done_", 0) > 0 and trainer.model_spec == lm.spec:
        st.session_state[RUN_KEY] = _finish(lm, exp, trainer, stopped=True)


def _live_view(exp: Experiment) -> Callable[[SAETrainer, TrainPoint], None]:
    """The progress callback: redraws a bar, the metrics and the curves, throttled."""
    bar, metrics, chart = st.progress(0.0), st.empty(), st.empty()
    last = {"t": 0.0}
    steps = exp.config.steps
    start = time.monotonic()

    def progress(trainer: SAETrainer, point: TrainPoint) -> None:
        if time.monotonic() - last["t"] < UPDATE_S and point.step < steps:
            return
        last["t"] = time.monotonic()
        left = (steps - point.step) * (time.monotonic() - start) / point.step
        bar.progress(point.step / steps, text=f"step {point.step:,} / {steps:,} "
                                              f"({point.tokens_seen:,} activations), about "
                                              f"{left:.0f} s left")
        splice = next((p.splice for p in reversed(trainer.history_) if p.splice), None)
        with metrics.container(horizontal=True):
            st.metric("Explained variance", f"{point.explained_variance:.3f}")
            st.metric("L0", f"{point.l0:.1f}")
            st.metric("Dead features", f"{point.dead_fraction:.0%}")
            st.metric("MSE", f"{point.mse:.3g}")
            st.metric("CE loss recovered", "..." if splice is None else f"{splice.recovered:.0%}")
        chart.altair_chart(training_curves(history_frame(trainer.history_)))
    return progress


def train_live(lm, exp: Experiment) -> SAERun:
    """Train exp on the current model with a live status box; the result also goes to RUN_KEY."""
    trainer = SAETrainer(exp.config, hook_name=exp.hook_name, model_spec=lm.spec)
    tokens = splice_batch(lm, lm.spec)
    with st.status(f"Training an SAE: {exp.label()}", expanded=True) as status:
        with st.spinner(READING, show_time=True):
            train, _ = activations(lm, lm.spec, exp.hook_name, exp.n_docs)
        st.button("Stop", key="sae_stop", icon=":material/stop_circle:",
                  help="Stop now and keep the SAE as it is.")
        progress = _live_view(exp)
        st.session_state[LIVE_KEY] = (exp, trainer)
        trainer.fit(train.acts, progress=progress,
                    evaluate=lambda sae: splice_losses(lm, sae, *tokens))
        st.session_state.pop(LIVE_KEY, None)
        status.update(label="Reading the features on held-out text...")
        run = _finish(lm, exp, trainer, stopped=False)
        status.update(label=f"Trained in {run.seconds:.1f} s ({run.acts_per_second:,.0f} "
                            f"activations/s): {exp.label()}", state="complete", expanded=False)
    st.session_state[RUN_KEY] = run
    return run


SWEEP_L1 = [0.2, 0.5, 1.0, 2.0, 4.0]
SWEEP_K = [2, 4, 8, 16, 32]


def run_sweep(lm, exp: Experiment, max_steps: int = 400) -> None:
    """Train one short SAE per L1 (or k) value; each adds a point to the chart as it finishes."""
    base = replace(exp.config, steps=min(exp.config.steps, max_steps))
    values = SWEEP_K if base.architecture == "topk" else SWEEP_L1
    with st.spinner(READING, show_time=True):
        train, _ = activations(lm, lm.spec, exp.hook_name, exp.n_docs)
    points = st.session_state.setdefault(POINTS_KEY, [])
    points[:] = [p for p in points if p["source"] != "sweep"]
    with st.status("Sweeping the sparsity setting...", expanded=True) as status:
        st.button("Stop", key="sae_sweep_stop", icon=":material/stop_circle:")
        bar = st.progress(0.0)
        for i, (value, config) in enumerate(zip(values, sweep_configs(base, values), strict=True)):
            sub = replace(exp, config=config)
            bar.progress(i / len(values), text=f"SAE {i + 1} of {len(values)}: {sub.sparsity}")
            trainer = SAETrainer(config, hook_name=exp.hook_name, model_spec=lm.spec).fit(train.acts)
            run = SAERun(sub, trainer.sae_, analyse(lm, trainer.sae_, exp.hook_name, exp.n_docs))
            _remember(run, "sweep", value)
        status.update(label=f"Swept {len(values)} SAEs ({base.steps} steps each)", state="complete",
                      expanded=False)
