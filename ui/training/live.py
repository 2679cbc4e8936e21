"""The live panel and the timeline view: a training log drawn as charts, scrubbed with one slider.

While a run trains, the panel is an st.fragment that reruns itself every REFRESH_S seconds: it
beats the run's heartbeat, reads the worker's progress and log (never the other way round), and
redraws the charts. When the run ends it reruns the whole page once, so the prediction is graded
and "Use this model" appears. The same view draws the bundled model's replayed timeline.
"""

from __future__ import annotations

import streamlit as st

from core.interp.training.log import Checkpoint, TrainingLog
from core.interp.training.phase import grok_verdict, induction_verdict
from core.interp.training.trap import copy_mechanism
from core.interp.training.worker import Job, scheduler
from ui.training import charts
from ui.training import frames as F
from ui.training.views import grok_notes, induction_notes, mechanism_notes, phase_marks

REFRESH_S = 2.0
STATE_WORDS = {"queued": "Waiting for a free worker", "running": "Training", "finished": "Finished",
               "stopped": "Stopped by you", "abandoned": "Stopped (the page was closed)",
               "over_time": "Stopped (it ran past this server's time limit for one run)",
               "diverged": "Diverged", "failed": "Failed"}


def _step_slider(steps: list[int], key: str) -> int:
    """A slider over the logged steps; it follows the newest step until the learner moves it."""
    follow_key, slider_key = f"{key}_follow", f"{key}_step"
    if st.session_state.get(follow_key, True) or st.session_state.get(slider_key) not in steps:
        st.session_state[slider_key] = steps[-1]

    def moved() -> None:
        st.session_state[follow_key] = st.session_state.get(slider_key) == steps[-1]

    if len(steps) == 1:
        st.caption(f"Step {steps[0]:,} (the timeline grows as the run is measured).")
        return steps[0]
    return st.select_slider("Timeline: show the model at step", options=steps, key=slider_key,
                            on_change=moved, format_func=lambda s: f"{s:,}")


def _metrics(c: Checkpoint) -> None:
    shown = [("Step", f"{c.step:,}")]
    if c.train_loss is not None:
        shown.append(("Train loss", f"{c.train_loss:.3f}"))
    if c.test_loss is not None:
        shown.append(("Test loss", f"{c.test_loss:.3f}"))
    if c.test_acc is not None:
        shown += [("Train accuracy", f"{c.train_acc:.0%}"), ("Test accuracy", f"{c.test_acc:.0%}")]
    if c.icl is not None:
        shown.append(("In-context learning", f"{c.icl:+.2f}"))
    best = c.best("induction")
    if best is not None:
        shown.append(("Best induction score", f"{best:.2f}"))
    for col, (label, value) in zip(st.columns(len(shown)), shown, strict=True):
        col.metric(label, value)


def log_view(log: TrainingLog, *, key: str, snapshot_tokens: list[str] | None = None,
             n_symbols: int | None = None, final: bool = True) -> None:
    """Every chart of a log, scrubbed by one timeline slider; "what to notice" from its verdicts."""
    checkpoints = log.checkpoints
    if not checkpoints:
        st.caption("Nothing measured yet.")
        return
    steps = [c.step for c in checkpoints]
    step = _step_slider(steps, key)
    shown = log.at(step)
    induction, grok = induction_verdict(log), grok_verdict(log)
    marks = phase_marks(induction, grok)
    _metrics(shown)
    left, right = st.columns(2)
    with left:
        st.markdown("**Loss** (nats; lower is better)")
        st.altair_chart(charts.timeline_lines(F.long_frame(checkpoints, F.LOSS_SERIES), y_title="loss",
                                              step=step, marks=marks), key=f"{key}_loss")
    with right:
        if grok is not None:
            st.markdown("**Accuracy** on the answer: pairs trained on vs never seen")
            accuracy = F.long_frame(checkpoints, F.ACCURACY_SERIES)
            st.altair_chart(charts.timeline_lines(accuracy, y_title="accuracy", step=step, marks=marks,
                                                  domain=(0, 1)), key=f"{key}_acc")
        elif shown.icl is not None or any(c.icl is not None for c in checkpoints):
            st.markdown("**In-context learning**: loss on a random half vs on its repeat")
            st.altair_chart(charts.timeline_lines(F.icl_frame(checkpoints), y_title="loss", step=step,
                                                  marks=marks), key=f"{key}_icl")
    if grok is not None:
        st.markdown("**Fourier sparsity of the number embeddings** (share of power in the 5 strongest "
                    "frequencies; 1 = built from a few waves)")
        st.altair_chart(charts.timeline_lines(F.fourier_frame(checkpoints), y_title="sparsity", step=step,
                                              marks=marks, domain=(0, 1), height=180), key=f"{key}_fourier")
    if induction is not None:
        left, right = st.columns(2)
        with left:
            st.markdown("**Best head scores over training** (the Attention page's scorer)")
            st.altair_chart(charts.timeline_lines(F.best_score_frame(checkpoints), y_title="score", step=step,
                                                  marks=marks, domain=(0, 1)), key=f"{key}_scores")
        with right:
            st.markdown(f"**Every head at step {shown.step:,}**")
            if shown.scores:
                st.altair_chart(charts.head_tables(F.head_table_frame(shown), title="score"),
                                key=f"{key}_heads")
        if shown.snapshot:
            tokens = snapshot_tokens or []
            st.markdown(f"**Attention of every head at step {shown.step:,}** on one repeated sequence "
                        f"({' '.join(tokens)}): a previous-token head draws the line just below the "
                        "diagonal, an induction head a line further left in the repeated half.")
            st.altair_chart(charts.snapshot_grid(F.snapshot_frame(shown, tokens), n_tokens=len(tokens) or 13,
                                                 columns=len(shown.snapshot[0])), key=f"{key}_snapshot")
    notes = []
    if induction is not None:
        notes += induction_notes(induction)
    if grok is not None:
        notes += grok_notes(grok)
    mechanism = copy_mechanism(log, n_symbols) if n_symbols else None
    if mechanism is not None:
        notes += mechanism_notes(mechanism)
    if notes:
        st.markdown("#### What to notice" + ("" if final else " so far"))
        st.markdown("\n".join(f"- {n}" for n in notes))


def job_status(job: Job) -> None:
    """Progress bar, state, queue place and the Stop button of a run."""
    s = job.settings
    words = STATE_WORDS[job.state]
    if job.state == "queued":
        place = scheduler().position(job) or 1  # None: it left the queue a moment ago
        st.info(f"{words}: place {place} in the queue (at most {scheduler().max_workers} runs train at once "
                "on this server).", icon=":material/hourglass_top:")
    fraction = min(1.0, job.steps_done / max(1, s.steps))
    elapsed = job.checkpoints[-1].elapsed_s if job.checkpoints else 0.0
    st.progress(fraction, text=f"{words}: step {job.steps_done:,} of {s.steps:,} ({elapsed:.0f} s)")
    if job.state == "diverged" and job.result is not None:
        st.error(f"The loss became NaN or infinite at step {job.result.diverged_at:,}: the learning rate "
                 f"({s.lr:g}) is too high for this model. Lower it and start again.", icon=":material/error:")
    if job.state == "failed":
        st.error(f"The run failed: {job.error}", icon=":material/error:")
    if job.active:
        st.button("Stop", key="train_stop", icon=":material/stop:", on_click=job.stop,
                  help="Ends the run after its current step; everything learned so far is kept.")


def live_panel(job: Job, *, n_symbols) -> None:
    """The run's status and charts, redrawn every REFRESH_S seconds while it is active."""
    was_active = job.active

    @st.fragment(run_every=REFRESH_S if was_active else None)
    def panel() -> None:
        job.beat()
        scheduler().tick()
        if was_active and not job.active:
            st.rerun()  # finished: the whole page redraws (grade, Use this model, download)
        job_status(job)
        log = TrainingLog(meta={}, checkpoints=list(job.checkpoints))
        # read on every redraw: the worker records the snapshot's tokens when the run starts
        log_view(log, key="train_live", snapshot_tokens=job.meta.get("snapshot_tokens"), n_symbols=n_symbols,
                 final=not job.active)

    panel()
