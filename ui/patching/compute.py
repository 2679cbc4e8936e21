"""Cached computations behind the Activation patching page.

Every result is a pure function of (model, behaviour, the pair typed for "custom", settings, and the
interventions switched on: `sig`, ui.common.interventions.signature), so it is cached and shared by
every session. Each cached call builds its engine (one forward pass over the clean and corrupted
prompts, under the active interventions) and runs one batched experiment on it. Exact ACDC is the
exception: it runs for seconds with a progress bar and a Stop button, so it is not cached but kept
in session state, partial results included.

A model whose weights are elsewhere (an NNsightLM) has no engine: its sweeps are attribution
patching plus at most REMOTE_BUDGET exact patched runs (core.interp.patching.reads).
"""

from __future__ import annotations

import time

import streamlit as st

from core.interp.patching import circuits as C
from core.interp.patching import path_patching as P
from core.interp.patching import reads as R
from core.interp.patching.attribution import AttributionResult, attribute
from core.interp.patching.engine import PatchEngine
from core.interp.patching.sweeps import SweepResult, run_sweep
from core.interp.patching.tasks import PatchingTask, build_task
from core.models import HookedLM
from core.models.remote import MAX_REMOTE_PATCH_RUNS
from ui.common.interventions import active_hooks, signature
from ui.common.remote import cache_on_backend

ACDC_KEY, ACDC_LIVE = "patch_acdc_result", "patch_acdc_live"
ACDC_MAX_EDGES = 1000  # exact ACDC tests edges one pass at a time: small graphs only
UPDATE_S = 0.25  # progress bar updates at most this often
REMOTE_BUDGET = MAX_REMOTE_PATCH_RUNS  # exact patched runs per sweep on a model elsewhere


def task_of(lm: HookedLM, behaviour: str, custom: tuple) -> PatchingTask:
    """The clean / corrupted batch (raises PairError with a message for the learner)."""
    return _task(lm, behaviour, custom)


@cache_on_backend(max_entries=16, show_spinner=False)
def _task(lm: HookedLM, behaviour: str, custom: tuple) -> PatchingTask:
    return build_task(lm, behaviour, custom=custom if behaviour == "custom" else None)


def engine_of(lm: HookedLM, behaviour: str, custom: tuple) -> PatchEngine:
    """The engine of this task, running everything under the session's active interventions."""
    return PatchEngine(lm, task_of(lm, behaviour, custom), hooks=active_hooks(lm))


@cache_on_backend(max_entries=8, show_spinner=False)
def baseline(lm: HookedLM, behaviour: str, custom: tuple, sig: tuple = ()):
    if not R.has_weights(lm):
        with lm.hooks(active_hooks(lm)):
            return R.baseline(lm, task_of(lm, behaviour, custom))
    return engine_of(lm, behaviour, custom).baseline


@cache_on_backend(max_entries=32, show_spinner="Patching every component in one batched run...")
def sweep(lm: HookedLM, behaviour: str, custom: tuple, kind: str, direction: str, sig: tuple = ()
          ) -> SweepResult:
    if not R.has_weights(lm):
        return budget_sweep(lm, behaviour, custom, kind, direction, sig).result
    return run_sweep(engine_of(lm, behaviour, custom), kind, direction)


@cache_on_backend(max_entries=32, show_spinner=False)
def budget_sweep(lm, behaviour: str, custom: tuple, kind: str, direction: str, sig: tuple = ()
                 ) -> R.BudgetSweep:
    """A sweep on a model elsewhere: attribution, then at most REMOTE_BUDGET exact patched runs."""
    return R.budget_sweep(lm, task_of(lm, behaviour, custom), kind, direction, REMOTE_BUDGET)


@cache_on_backend(max_entries=16, show_spinner="Path patching every sender -> receiver pair...")
def paths(lm: HookedLM, behaviour: str, custom: tuple, direction: str, senders: tuple | None,
          sig: tuple = ()) -> P.PathResult:
    return P.path_patch_all(engine_of(lm, behaviour, custom), direction,
                            list(senders) if senders is not None else None)


@cache_on_backend(max_entries=16, show_spinner="One backward pass for every estimate...")
def attribution(lm: HookedLM, behaviour: str, custom: tuple, direction: str, sig: tuple = ()
                ) -> AttributionResult:
    engine = engine_of(lm, behaviour, custom)
    return attribute(engine, sweep(lm, behaviour, custom, "heads_by_pos", direction, sig),
                     sweep(lm, behaviour, custom, "head_parts", direction, sig))


@cache_on_backend(max_entries=16, show_spinner="Scoring every edge from gradients...")
def edge_scores(lm: HookedLM, behaviour: str, custom: tuple, steps: int, sig: tuple = ()) -> C.EdgeScores:
    return C.eap_scores(engine_of(lm, behaviour, custom), steps)


@cache_on_backend(max_entries=64, show_spinner="Measuring the circuit's faithfulness...")
def circuit(lm: HookedLM, behaviour: str, custom: tuple, steps: int, n_edges: int, sig: tuple = ()
            ) -> C.Circuit:
    engine = engine_of(lm, behaviour, custom)
    kept = C.top_edges(edge_scores(lm, behaviour, custom, steps, sig), n_edges)
    method = "EAP" if steps == 1 else f"EAP-IG ({steps} steps)"
    return C.circuit(engine, kept, f"{method}, top {n_edges} edges", mean_ablation=True)


@cache_on_backend(max_entries=16, show_spinner="Faithfulness of circuits of every size, in one batch...")
def curve(lm: HookedLM, behaviour: str, custom: tuple, steps: int, sizes: tuple, sig: tuple = ()) -> list:
    engine = engine_of(lm, behaviour, custom)
    return C.faithfulness_curve(engine, edge_scores(lm, behaviour, custom, steps, sig), list(sizes))


def acdc_key(lm: HookedLM, behaviour: str, custom: tuple, threshold: float) -> tuple:
    """What an ACDC run in this session belongs to (the interventions included)."""
    return (lm.spec, behaviour, custom, threshold, signature(lm))


def acdc_result(key: tuple) -> C.AcdcResult | None:
    """The finished (or stopped) ACDC run for these settings, if there is one in this session."""
    got = st.session_state.get(ACDC_KEY)
    return got[1] if got is not None and got[0] == key else None


def recover_stopped(lm: HookedLM, behaviour: str, custom: tuple, key: tuple) -> None:
    """A run interrupted by Stop left its state in ACDC_LIVE: finish it as a stopped result."""
    live = st.session_state.pop(ACDC_LIVE, None)
    if live is None or live["key"] != key:
        return
    engine = engine_of(lm, behaviour, custom)
    result = C.acdc_result(engine, live["patched"], key[3], live["tested"] + 1, live["tested"],
                           live["seconds"], stopped=True)
    st.session_state[ACDC_KEY] = (key, result)


def run_acdc(lm: HookedLM, behaviour: str, custom: tuple, threshold: float) -> C.AcdcResult:
    """Exact ACDC with a live progress bar; Stop (or any control) interrupts it, and the next run of
    the page finishes the partial circuit (recover_stopped)."""
    key = acdc_key(lm, behaviour, custom, threshold)
    engine = engine_of(lm, behaviour, custom)
    label = f"Exact ACDC, threshold {threshold}: one patched run per edge..."
    with st.status(label, expanded=True) as status:
        st.button("Stop", key="patch_acdc_stop", icon=":material/stop_circle:",
                  help="Stop now: the edges not tested yet stay in the circuit.")
        bar = st.progress(0.0)
        started, last = time.perf_counter(), {"t": 0.0}

        def progress(fraction, edge, patched, tested):
            st.session_state[ACDC_LIVE] = {"key": key, "patched": patched.copy(), "tested": tested,
                                           "seconds": time.perf_counter() - started}
            if time.monotonic() - last["t"] >= UPDATE_S or fraction >= 1:
                last["t"] = time.monotonic()
                bar.progress(min(1.0, fraction),
                             text=f"{fraction:.0%} of the edges decided; last tested: {edge}")

        result = C.acdc(engine, threshold, progress=progress)
        st.session_state.pop(ACDC_LIVE, None)
        status.update(label=f"Exact ACDC: {result.n_tested} edges tested in {result.seconds:.1f} s, "
                            f"{int(result.kept.sum())} kept", state="complete", expanded=False)
    st.session_state[ACDC_KEY] = (key, result)
    return result
