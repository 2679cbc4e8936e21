"""Training on the LoRA page: a live status box with a Stop button, what survives a stop, and the
cached analyses of the tuned copies.

Pressing Stop (or touching any other control) makes Streamlit rerun the script, which interrupts
the training loop at its next progress update. The fine-tuners are kept in session state while they
run, so the next run of the script keeps what they learned so far instead of losing it.

Every run holds a whole copy of the model in session state, so the page keeps few of them: the runs
of the last press of Train (at most MAX_RUNS, a loaded adapter included), registered in the
session's memory ledger (ui.common.budget) and checked against its budget before each copy is
made. Earlier runs keep only their forgetting curves (LOG_KEY).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import streamlit as st
import torch

from core.interp.finetune import behaviour_diff as B
from core.interp.finetune import weight_diff as D
from core.interp.finetune.config import ROLES, FinetuneConfig
from core.interp.finetune.forgetting import SKILL_LABELS, SkillSuite
from core.interp.finetune.memory import check_copy_budget, model_bytes
from core.interp.finetune.targets import target_modules
from core.interp.finetune.tasks import Task, make_task
from core.interp.finetune.training import FineTuner, Progress
from core.interp.finetune.verdict import ForgettingReport, forgetting_report
from core.models.budget import MemoryBudgetError, session_budget_bytes
from ui.common import budget
from ui.common.cache import cache_on_model
from ui.common.page import show_problem
from ui.lora.charts import loss_chart
from ui.lora.controls import Settings
from ui.lora.frames import loss_frame, overlap_frame

RESULT_KEY, LIVE_KEY, LOG_KEY = "lora_result", "lora_live", "lora_log"
LEDGER_KEY = "lora_copies"  # this page's entry in the session's memory ledger
UPDATE_S = 1.0  # at most this often the live status is redrawn (a redraw costs ~30 ms of the loop)
MAX_LOG = 8
MAX_RUNS = 3  # fine-tuned copies kept in session state (each is a whole model)
# The page's default run (LoRA and full fine-tuning, 150 steps each, old skills every 25 steps) on the
# bundled model, one torch thread, on the current code: the median of benchmarks/bench_lora.py's "page
# default run" was 9.1, 10.9, 10.6 and 9.4 s in four runs on a 2-core Xeon with AMX (2026-12-07; the
# plain PEFT loop on one thread took 6.1-7.5 s over the same runs: the machine's load moved both). The
# first press in a fresh app, which also times each run's step in both number formats, took 10.7 s; a
# press in the browser 8.5 s.
DEFAULT_RUN_S = 10


def promise(lm) -> str:
    """How long training takes, as measured (see DEFAULT_RUN_S)."""
    if lm.is_bundled:
        return (f"with the default settings, LoRA and full fine-tuning for {FinetuneConfig.steps} steps each "
                f"take about {DEFAULT_RUN_S} s together on one CPU thread")
    return ("on a model larger than the bundled one every step takes longer: the status box shows the time "
            "as it goes, and Stop keeps what was learned")


@dataclass
class LoraResult:
    """One press of Train (plus any adapter loaded afterwards): label -> fitted FineTuner."""

    settings: Settings | None
    spec: str
    task: Task
    suite: SkillSuite
    runs: dict = field(default_factory=dict)
    stopped: bool = False
    analysis: dict = field(default_factory=dict)  # memo per run label (adapter zips)

    def report(self, diverged: tuple[str, ...] = ()) -> ForgettingReport:
        """The forgetting verdicts of the runs measured at least twice (core.interp.finetune.verdict);
        `diverged` names the runs whose loss or weights became NaN or infinite (see diverged_runs)."""
        return forgetting_report({label: (run_method(run), run.history_) for label, run in self.runs.items()},
                                 diverged)


def run_method(run) -> str:
    """"lora", "ia3", "full", or "loaded" for an adapter read from a file."""
    return run.config.method if getattr(run, "config", None) is not None else "loaded"


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
                    "history": list(run.history_)})
    del log[:-MAX_LOG]


def keep(result: LoraResult, lm) -> None:
    """Store the result and put its copies in the session's memory ledger."""
    st.session_state[RESULT_KEY] = result
    budget.hold(LEDGER_KEY, model_bytes(lm) * len(result.runs))


def let_go() -> None:
    """Drop the stored result's copies (before new ones are made)."""
    st.session_state.pop(RESULT_KEY, None)
    budget.release(LEDGER_KEY)


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
    keep(live, lm)
    _log(live)


def _skills_line(skills: dict[str, float]) -> str:
    return " · ".join(f"{SKILL_LABELS[k]} {v:.2f}" for k, v in skills.items() if v == v)


def memory_note(lm) -> str:
    """What the page keeps in memory, said on the page."""
    return (f"Each fine-tuned copy holds a whole copy of the model ({model_bytes(lm) / 1e6:,.1f} MB here), "
            f"so this page keeps at most {MAX_RUNS} of them, those of the last press of **Train** (a loaded "
            f"adapter included), within this session's memory budget ({session_budget_bytes() / 1e6:,.0f} MB "
            "for everything it holds on every page). Earlier runs keep only their forgetting curves.")


def _affordable(lm, configs: dict) -> dict:
    """The configs whose copies fit the session budget one after the other (at most MAX_RUNS); a
    message for each refused one."""
    kept, held = {}, budget.held_bytes(except_key=LEDGER_KEY)
    for label, cfg in configs.items():
        if len(kept) == MAX_RUNS:
            show_problem(f"{label} was not trained: this page keeps at most {MAX_RUNS} fine-tuned copies.")
            continue
        try:
            check_copy_budget(lm, cfg.method, held_bytes=held)
        except MemoryBudgetError as err:
            show_problem(f"{label} was not trained. {err}")
            continue
        kept[label] = cfg
        held += model_bytes(lm)  # what stays once it has trained (gradients and moments are freed)
    return kept


def train_live(lm, settings: Settings) -> LoraResult | None:
    """Fine-tune one copy per method in settings, with live progress; also stored in RESULT_KEY.

    The previous result's copies are let go first; None if no copy fits the memory budget."""
    configs = _affordable(lm, settings.configs())  # weighed without the last result's copies...
    if not configs:
        return None
    let_go()  # ... which go before new ones are made
    task = make_task(settings.task, seed=settings.lora.seed)
    suite = SkillSuite.build(lm, task, seed=settings.lora.seed)
    result = LoraResult(settings, lm.spec, task, suite)
    total = sum(c.steps for c in configs.values())
    with st.status("Fine-tuning private copies of the model (the shared one never changes)...",
                   expanded=True) as status:
        st.button("Stop", key="lora_stop", icon=":material/stop_circle:",
                  help="Stop now and keep what was learned so far.")
        bar, line, chart = st.progress(0.0), st.empty(), st.empty()
        done_before, last = 0, {"t": 0.0}
        held = budget.held_bytes(except_key=LEDGER_KEY)
        st.session_state[LIVE_KEY] = result
        for label, cfg in configs.items():
            tuner = FineTuner(cfg, held_bytes=held)
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
    keep(result, lm)
    _log(result)
    return result


def make_room(lm, result: LoraResult | None, keep_out: str) -> tuple[list[str], float]:
    """Which runs of result (oldest first; `keep_out` is being replaced) must go so that one more copy
    fits: at most MAX_RUNS copies; and the bytes the session then holds elsewhere and in the rest."""
    others = [k for k in (result.runs if result else ()) if k != keep_out]
    drop = []
    while others and len(others) + 1 > MAX_RUNS:
        drop.append(others.pop(0))
    return drop, budget.held_bytes(except_key=LEDGER_KEY) + len(others) * model_bytes(lm)


def current_result(lm) -> LoraResult | None:
    result = st.session_state.get(RESULT_KEY)
    return result if result is not None and result.spec == lm.spec else None


# -- cached analyses: keyed on the models' specs, and every tuned copy has a spec of its own ----------
@cache_on_model(max_entries=16, show_spinner=False)
def diff_report(lm, tuned) -> list[D.MatrixDiff]:
    """MatrixDiff per adapted matrix of `tuned` against its base `lm` (the deltas themselves are not
    kept: on a hub model they would hold hundreds of megabytes per run)."""
    return D.diff_report(lm, D.deltas(lm, tuned))


@cache_on_model(max_entries=32, show_spinner=False)
def token_kl(lm, tuned, tokens: tuple[int, ...]) -> B.TokenKL:
    return B.token_kl(lm, tuned, torch.tensor([tokens]))


@cache_on_model(max_entries=16, show_spinner=False)
def generations(lm, tuned, prompts: tuple[str, ...]) -> list[B.GenerationPair]:
    return B.generations(lm, tuned, list(prompts), max_new_tokens=12)


def diverged_runs(lm, result: LoraResult) -> tuple[str, ...]:
    """The runs whose training loss became NaN or infinite (FineTuner.diverged_) or whose update holds
    NaN or infinite numbers (the Weights tab cannot draw those)."""
    return tuple(label for label, run in result.runs.items() if getattr(run, "diverged_", False)
                 or any(not m.finite for m in diff_report(lm, run.model_)))


@cache_on_model(max_entries=64, show_spinner=False)
def top_token(lm, prompt: str) -> str:
    """The top next-token prediction of `lm` (a base model or a tuned copy) after `prompt`."""
    logits = lm(lm.to_tokens(prompt))[0, -1]  # [d_vocab] (no gradients: HookedLM.forward)
    return lm.tokenizer.decode([int(logits.argmax())])


@cache_on_model(max_entries=8, show_spinner=False)
def overlap_table(lm, lora_lm, full_lm, k: int):
    """Subspace overlap of the LoRA and the full update, per matrix (a frame for the table)."""
    overlaps = D.overlaps(lm, D.deltas(lm, lora_lm), D.deltas(lm, full_lm), k)
    return overlap_frame(overlaps, target_modules(lm, tuple(ROLES)))
