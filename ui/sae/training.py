"""Training an SAE on the page: live status, a Stop button, and what survives a stop.

Pressing Stop (or touching any other control) makes Streamlit rerun the script, which interrupts
the training loop at its next progress update. The trainer object is kept in session state while
it runs, so the next run of the script finishes it from where it stopped instead of losing it.

Where the time goes, and what keeps it short: reading the activations (once per hook and corpus,
then cached), the optimiser steps, the spliced cross-entropy (one forward pass per evaluation, the
clean and zero-ablated losses computed once per hook), and redrawing the live status (at most every
UPDATE_S seconds, the curves every CURVES_S). The report afterwards encodes the held-out
activations once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import streamlit as st

from core.interp.sae.model import SAE
from core.interp.sae.report import Report, analysis_bytes
from core.interp.sae.train import SAETrainer, TrainPoint, sweep_configs, training_bytes
from core.interp.sae.verdict import SweepVerdict, sweep_verdict
from ui.common.budget import check_session_fits, hold
from ui.sae.charts import training_curves
from ui.sae.compute import DEFAULT_DOCS, READING, activations, analyse, evaluator, n_heldout
from ui.sae.controls import Experiment
from ui.sae.frames import history_frame

RUN_KEY, LIVE_KEY, POINTS_KEY = "sae_run_result", "sae_live", "sae_points"
BUDGET_KEY = "sae"  # this page's entry in the session's memory ledger (ui.common.budget)
UPDATE_S = 1.0  # at most this often the live bar and metrics are redrawn
CURVES_S = 3.0  # and the curves
EVALUATIONS = 4  # spliced-loss evaluations during a training run


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
    dtype_reason: str = ""  # which format the products ran in, and why
    source: str = ""  # an uploaded file's name and layout

    @property
    def n_docs(self) -> int:
        """The corpus setting its activations come from."""
        return self.experiment.n_docs if self.experiment else self.n_docs_measured

    @property
    def key(self) -> str:
        """What makes this result differ from another (the prediction step's context)."""
        if self.experiment is not None:
            return self.experiment.key()
        cfg = self.sae.cfg
        return f"upload|{self.source}|{cfg.hook_name}|{cfg.d_sae}|{self.n_docs}"

    @property
    def nbytes(self) -> int:
        cfg = self.sae.cfg
        return 4 * (2 * cfg.d_in * cfg.d_sae + cfg.d_in + cfg.d_sae) + self.report.nbytes


def keep(run: SAERun) -> None:
    """Make run the page's SAE and book its memory in the session's ledger."""
    st.session_state[RUN_KEY] = run
    hold(BUDGET_KEY, run.nbytes)


def check_training_fits(lm, exp: Experiment) -> None:
    """MemoryBudgetError (a ValueError with advice) if this run would not fit the session budget."""
    d_in, d_sae = lm.cfg.d_model, exp.config.expansion * lm.cfg.d_model
    need = training_bytes(d_in, d_sae, exp.config.batch_size) + analysis_bytes(d_in, d_sae,
                                                                               n_heldout(lm, exp.n_docs))
    check_session_fits(BUDGET_KEY, need, what=f"training an SAE with {d_sae:,} features",
                       lower="a smaller expansion")


def _remember(run: SAERun, source: str, setting: float) -> None:
    """Add a point to the sparsity-vs-reconstruction chart."""
    r = run.report
    point = {"hook": run.sae.cfg.hook_name, "model": run.sae.cfg.model_spec,
             "architecture": run.sae.cfg.architecture,
             "l0": r.recon.l0, "explained_variance": r.recon.explained_variance,
             "loss_recovered": r.splice.recovered if r.splice else float("nan"),
             "found": r.n_found, "imprecise": len(r.findings.imprecise),
             "missed": r.findings.n_present - r.n_found, "narrow": len(r.findings.missed_narrow),
             "broad": len(r.findings.missed_broad), "setting": setting, "source": source,
             "label": run.experiment.label() if run.experiment else "uploaded"}
    st.session_state.setdefault(POINTS_KEY, []).append(point)


def sweep_verdict_of(sweep: list[dict]) -> SweepVerdict:
    """The sweep's verdict from its chart points (a point from before a key existed counts 0)."""
    counts = {k: [p.get(k, 0) for p in sweep] for k in ("imprecise", "missed", "narrow", "broad")}
    return sweep_verdict([p["l0"] for p in sweep], [p["found"] for p in sweep], **counts)


def _finish(lm, exp: Experiment, trainer: SAETrainer, stopped: bool) -> SAERun:
    trainer.finish()
    run = SAERun(exp, trainer.sae_, analyse(lm, trainer.sae_, exp.n_docs), history=list(trainer.history_),
                 stopped=stopped, steps=trainer.steps_done_, seconds=trainer.seconds_,
                 acts_per_second=trainer.acts_per_second_, dtype_reason=trainer.dtype_reason())
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
        keep(_finish(lm, exp, trainer, stopped=True))


def _live_view(exp: Experiment) -> Callable[[SAETrainer, TrainPoint], None]:
    """The progress callback: redraws a bar and the metrics every UPDATE_S, the curves every CURVES_S."""
    bar, metrics, chart = st.progress(0.0), st.empty(), st.empty()
    last = {"bar": 0.0, "curves": time.monotonic()}
    steps = exp.config.steps
    start = time.monotonic()

    def progress(trainer: SAETrainer, point: TrainPoint) -> None:
        now = time.monotonic()
        if now - last["bar"] < UPDATE_S and point.step < steps:
            return
        last["bar"] = now
        left = (steps - point.step) * (now - start) / point.step
        bar.progress(point.step / steps, text=f"step {point.step:,} / {steps:,} "
                                              f"({point.tokens_seen:,} activations), about "
                                              f"{left:.0f} s left")
        splice = next((p.splice for p in reversed(trainer.history_) if p.splice), None)
        with metrics.container(horizontal=True):
            st.metric("Explained variance", f"{point.explained_variance:.3f}")
            st.metric("L0", f"{point.l0:.1f}")
            st.metric("Dead features", f"{point.dead_fraction:.0%}")
            st.metric("CE loss recovered", "..." if splice is None else f"{splice.recovered:.0%}")
        if now - last["curves"] >= CURVES_S:
            last["curves"] = now
            chart.altair_chart(training_curves(history_frame(trainer.history_)))
    return progress


def train_live(lm, exp: Experiment) -> SAERun:
    """Train exp on the current model with a live status box; the result also goes to RUN_KEY."""
    config = replace(exp.config, eval_every=max(1, exp.config.steps // exp.config.log_every // EVALUATIONS))
    trainer = SAETrainer(config, hook_name=exp.hook_name, model_spec=lm.spec)
    with st.status(f"Training an SAE: {exp.label()}", expanded=True) as status:
        with st.spinner(READING, show_time=True):
            train, _ = activations(lm, exp.hook_name, exp.n_docs)
            splice = evaluator(lm, exp.hook_name)
        st.button("Stop", key="sae_stop", icon=":material/stop_circle:",
                  help="Stop now and keep the SAE as it is.")
        progress = _live_view(exp)
        st.session_state[LIVE_KEY] = (exp, trainer)
        trainer.fit(train.acts, progress=progress, evaluate=splice)
        st.session_state.pop(LIVE_KEY, None)
        status.update(label="Reading the features on held-out text...")
        run = _finish(lm, exp, trainer, stopped=False)
        status.update(label=f"Trained in {run.seconds:.1f} s ({run.acts_per_second:,.0f} "
                            f"activations/s): {exp.label()}", state="complete", expanded=False)
    keep(run)
    return run


SWEEP_L1 = [0.2, 0.5, 1.0, 2.0, 4.0]
SWEEP_K = [2, 4, 8, 16, 32]


def sweep_values(architecture: str) -> list:
    """The settings a sweep trains one SAE each for: k for TopK, else the L1 coefficient."""
    return SWEEP_K if architecture == "topk" else SWEEP_L1


def run_sweep(lm, exp: Experiment, max_steps: int = 400) -> None:
    """Train one short SAE per L1 (or k) value; each adds a point to the chart as it finishes."""
    base = replace(exp.config, steps=min(exp.config.steps, max_steps))
    values = sweep_values(base.architecture)
    with st.spinner(READING, show_time=True):
        train, _ = activations(lm, exp.hook_name, exp.n_docs)
    points = st.session_state.setdefault(POINTS_KEY, [])
    points[:] = [p for p in points if p["source"] != "sweep"]
    with st.status("Sweeping the sparsity setting...", expanded=True) as status:
        st.button("Stop", key="sae_sweep_stop", icon=":material/stop_circle:")
        bar = st.progress(0.0)
        for i, (value, config) in enumerate(zip(values, sweep_configs(base, values), strict=True)):
            sub = replace(exp, config=config)
            bar.progress(i / len(values), text=f"SAE {i + 1} of {len(values)}: {sub.sparsity}")
            trainer = SAETrainer(config, hook_name=exp.hook_name, model_spec=lm.spec).fit(train.acts)
            _remember(SAERun(sub, trainer.sae_, analyse(lm, trainer.sae_, exp.n_docs)), "sweep", value)
        status.update(label=f"Swept {len(values)} SAEs ({base.steps} steps each)", state="complete",
                      expanded=False)
