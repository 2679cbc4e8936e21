"""The XOR page's verdict: the run's numbers, every finding of the diagnosis, and one "what to try
next" worded from the diagnosis's typed advice (core.scratch.diagnose.Advice)."""

from __future__ import annotations

import streamlit as st

from core.scratch.diagnose import FLAT_GRADIENT, PLATEAU_TOLERANCE, STEADY_SHARE, Advice, Diagnosis
from core.scratch.train import TrainResult
from ui.xor.controls import INIT_LABELS

_SHOW = {"success": st.success, "error": st.error, "warning": st.warning, "info": st.info}
_ICONS = {"success": ":material/check_circle:", "error": ":material/error:", "warning": ":material/warning:",
          "info": ":material/info:"}


def steadiness(a: Advice) -> str:
    """How often the loss rose in the last quarter (the measured share) and what that allows, as a
    clause that follows "... while the loss was still falling"."""
    share = a.rise_share
    if share == 0:
        rose, overshot = "it never rose in the last quarter", "no step overshot"
    else:
        rose = f"it rose on {share:.1%} of the epochs of the last quarter"
        overshot = "almost no step overshot"
    if "higher_lr" in a.actions:
        return (f", and {rose} (up to {STEADY_SHARE:.0%} counts as steady): {overshot}, so larger steps are "
                "worth a try.")
    return (f"; {rose}, more than the {STEADY_SHARE:.0%} that counts as steady, so a larger learning rate "
            "is not advised.")


def _because(d: Diagnosis, result: TrainResult) -> str:
    """Why the advice is what it is: the evidence, in numbers from this run."""
    a, c = d.advice, result.config
    dead_now = len(d.dead_units) - len(d.dead_from_start)
    return {
        "diverged": f"It diverged at epoch {d.diverged_at} with learning rate {c.lr:g}: the steps are too "
                    "big.",
        "symmetric_init": "The twin units were identical from the first epoch, so they get identical "
                          "updates whatever the learning rate: only the initialisation can tell them apart.",
        "dead_in_training": ("The dead units" if dead_now == len(d.dead_units) else
                             f"{dead_now} of the {len(d.dead_units)} dead units")
                            + " died during training: a step pushed their pre-activation below 0 for every "
                              "example.",
        "dead_from_start": "The dead units were dead from the first epoch, so the learning rate played no "
                           "part in it.",
        "saturated_from_start": "The saturated units were saturated from the first epoch: the initial "
                                "weights were too large for this activation.",
        "saturated_in_training": "The units saturated during training: the steps grew their weights too far.",
        "flat": f"The gradient at the plateau is {a.gradient_norm:.2g}, under {FLAT_GRADIENT:g}: the network "
                "sits at a flat point (a local minimum or a saddle) that bigger steps do not escape.",
        "bouncing": f"On the plateau the loss rose on {a.rise_share:.0%} of the epochs: the steps bounce "
                    "between the walls of a valley instead of going down it.",
        "creeping": f"On the plateau the loss fell on {1 - a.rise_share:.0%} of the epochs, by less than "
                    f"{PLATEAU_TOLERANCE:.0%} in all, with a gradient of {a.gradient_norm:.2g}: the slope "
                    "is there, the steps are too small.",
        "still_learning": "The loss was still falling when training ended" + steadiness(a),
        "cut": (f"The budget is {d.budget.max_steps:,} optimiser steps per run, and batches of "
                f"{c.batch_size} make {d.budget.steps_per_epoch:,} steps per epoch, so this run stopped at "
                f"epoch {c.epochs:,} while its loss was still falling" + steadiness(a) if d.budget else ""),
    }.get(a.cause, "")


def _action(action: str, advice: Advice, result: TrainResult) -> str:
    c = result.config
    widest = max(c.hidden)
    batch = "full batch" if c.batch_size == 0 else f"{c.batch_size}"
    return {
        "lower_lr": f"a smaller learning rate (now {c.lr:g})",
        "higher_lr": f"a larger learning rate (now {c.lr:g})",
        "random_init": "a random initialisation (Xavier, He or Small random)",
        "smaller_init": f"an initialisation with smaller weights (now {INIT_LABELS[c.init]})",
        "another_seed": f"another seed (now {c.seed})",
        "more_units": f"more hidden units (the widest layer has {widest})",
        "more_epochs": f"more epochs (now {c.epochs:,})",
        "larger_batch": (f"batches of at least {advice.fitting_batch} (now {batch}), so that all "
                         f"{c.epochs_requested or c.epochs:,} epochs fit"),
    }[action]


def advice_text(result: TrainResult) -> str:
    """One recommendation, or "" when the run needs none (solved)."""
    d = result.diagnosis
    if not d.advice.actions:
        return ""
    actions = [_action(a, d.advice, result) for a in d.advice.actions]
    tries = actions[0] if len(actions) == 1 else ", ".join(actions[:-1]) + " or " + actions[-1]
    return f"**What to try next:** {tries}. {_because(d, result)}"


def show_verdict(result: TrainResult) -> None:
    """The numbers of the run, every finding of the diagnosis as a coloured box, and the advice."""
    loss, acc, epochs, speed = st.columns(4)
    final = result.final_loss
    loss.metric("Final loss", f"{final:.4f}" if final >= 1e-3 else f"{final:.2e}", border=True)
    acc.metric("Accuracy", f"{result.final_accuracy:.0%}", border=True)
    epochs.metric("Epochs trained", f"{result.epochs_run:,}", border=True)
    took = f"{result.seconds:.2f} s" if result.seconds >= 1 else f"{result.seconds * 1000:.0f} ms"
    speed.metric("Training took", took, border=True,
                 help=f"{result.steps:,} optimiser steps")
    for finding in result.diagnosis.findings:
        _SHOW[finding.severity](f"**{finding.title}.** {finding.detail}", icon=_ICONS[finding.severity])
    advice = advice_text(result)
    if advice:
        st.info(advice, icon=":material/lightbulb:")
