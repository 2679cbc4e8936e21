"""The LoRA page's sentences about its results, each worded from a typed verdict or a measured number
(core.interp.finetune.verdict, weight_diff.MatrixDiff). Plain functions from results to strings, no
Streamlit here, so every sentence is unit-tested on constructed results that go each way."""

from __future__ import annotations

from collections.abc import Sequence

from core.interp.finetune.forgetting import SKILL_LABELS
from core.interp.finetune.verdict import (
    FORGOT,
    LEARNED,
    UNSTABLE_LOSS_RISE,
    ForgettingComparison,
    ForgettingReport,
    RunVerdict,
)
from core.interp.finetune.weight_diff import MatrixDiff


def arrow(before: float, after: float) -> str:
    return f"{before:.2f} → {after:.2f}"


def _names(labels: Sequence[str]) -> str:
    return ", ".join(labels)


def diverged_warning(labels: Sequence[str]) -> str:
    """The Weights tab's note on runs whose update holds NaN or infinite numbers."""
    return (f"{_names(labels)}: some weights became NaN or infinite (the learning rate was too large), so "
            f"{'that update has' if len(labels) == 1 else 'those updates have'} no size or spectrum to draw.")


def learning_sentence(report: ForgettingReport) -> str:
    """Did each run learn the new task (new-task accuracy at the end >= LEARNED), and if not, what to
    change: one piece of advice per run, from its verdict (RunVerdict.advice), never two that clash."""
    sentences = []
    if report.diverged:
        its = "its" if len(report.diverged) == 1 else "their"
        sentences.append(f"{_names(report.diverged)}: training diverged (the loss or some weights became NaN "
                         f"or infinite), so {its} learning rate was too large: try a smaller one.")
    runs = [r for r in report.runs if not r.diverged]
    if runs:
        parts = ", ".join(f"{r.label} {arrow(r.task_before, r.task_after)}" for r in runs)
        learned = [r.label for r in runs if r.learned]
        missed = [r.label for r in runs if not r.learned]
        other = " other" if report.diverged else ""
        if not missed:
            who = f"Every{other} run" if len(runs) > 1 else runs[0].label
            sentences.append(f"{who} learned the new task (its accuracy: {parts}).")
        elif not learned:
            who = f"No{other} run learned" if len(runs) > 1 else f"{runs[0].label} did not learn"
            sentences.append(f"{who} the new task yet (its accuracy: {parts}; {LEARNED:.2f} counts as "
                             "learned).")
        else:
            sentences.append(f"{_names(learned)} learned the new task, {_names(missed)} did not "
                             f"(its accuracy: {parts}).")
    for r in runs:
        if r.advice == "smaller_lr":
            sentences.append(f"{r.label} did not learn it while its loss on the original text rose by "
                             f"{r.val_loss_change:.1f} nats ({UNSTABLE_LOSS_RISE:g} or more: steps too large "
                             "to settle): try a smaller learning rate.")
    slow = [r.label for r in runs if r.advice == "more_steps_or_larger_lr"]
    if slow:
        who = "" if len(runs) == 1 else f" for {_names(slow)}"
        sentences.append(f"Try more steps or a larger learning rate{who}.")
    return " ".join(sentences)


def comparison_sentences(c: ForgettingComparison) -> list[str]:
    """Skill by skill and overall: which of LoRA and full fine-tuning forgot more. The overall numbers
    are the paired means the verdict compares (the old skills both runs measured)."""
    if not c.skills:
        return [f"No old skill could be measured under both {c.lora.label} and {c.full.label} on this model, "
                "so their forgetting cannot be compared."]
    lines = []
    for s in c.skills:
        name = SKILL_LABELS[s.skill]
        a, b = arrow(s.lora.before, s.lora.after), arrow(s.full.before, s.full.after)
        if s.kept_by_both:
            lines.append(f"{name}: kept by both, each fell by less than {FORGOT:.2f} ({a} under "
                         f"{c.lora.label}, {b} under {c.full.label}).")
        elif s.more == "same":
            lines.append(f"{name} fell about as much under both: {a} under {c.lora.label}, {b} under "
                         f"{c.full.label}.")
        else:
            (more, m), (less, n) = (((c.lora.label, a), (c.full.label, b)) if s.more == "lora"
                                    else ((c.full.label, b), (c.lora.label, a)))
            lines.append(f"{name} fell more under {more} ({m}) than under {less} ({n}).")
    x, y = c.lora_mean_drop, c.full_mean_drop
    if c.more == "same":
        overall = (f"Overall, averaged over these skills, {c.lora.label} lost {x:.2f} of accuracy and "
                   f"{c.full.label} {y:.2f}: about the same.")
    else:
        (more, m), (less, n) = ((c.lora.label, x), (c.full.label, y)) if c.more == "lora" else \
            ((c.full.label, y), (c.lora.label, x))
        overall = (f"Overall, {more} forgot more: it lost {m:.2f} of accuracy on average over these skills, "
                   f"{less} {n:.2f}.")
    paper = (" Biderman et al. (2024) found that LoRA forgets less than full fine-tuning; "
             + ("so did this run." if c.agrees_with_paper else "this run did not."))
    return [*lines, overall + paper]


def run_sentence(r: RunVerdict) -> str:
    """What one run forgot (for a run with nothing to compare to)."""
    if not r.drops:
        return f"{r.label}: no old skill could be measured on this model."
    if r.forgotten:
        lost = "; ".join(f"{SKILL_LABELS[d.skill]} {arrow(d.before, d.after)}" for d in r.forgotten)
        return f"{r.label} forgot part of what the model could do: {lost}."
    return f"{r.label} kept the old skills (no accuracy fell by {FORGOT:.2f} or more)."


def learn_forget_advice(report: ForgettingReport) -> str:
    """What to try to move a point of the learning-vs-forgetting chart left, chosen from the verdicts:
    the run that forgot more is the one to change."""
    c = report.comparison
    if not any(r.forgotten for r in report.runs):
        return (f"No run lost {FORGOT:.2f} or more of any old skill's accuracy: every point is already near "
                "the left edge.")
    if c is None or not c.skills:
        return ("To move a point left, train again with replay (original text mixed into every batch) or a "
                "smaller learning rate.")
    if c.more == "lora":
        return (f"Here {c.lora.label} forgot more than {c.full.label}: to move its point left, train again "
                "with a smaller LoRA learning rate or with replay.")
    if c.more == "full":
        return (f"Here {c.full.label} forgot more, as Biderman et al. (2024) found: to move its point left, "
                "train again with a smaller full fine-tuning learning rate or with replay; train with a "
                "lower LoRA rank to see whether LoRA forgets less still.")
    return (f"Here {c.lora.label} and {c.full.label} forgot about as much: change one setting (LoRA's rank, "
            "a learning rate, replay) and train again to see which point moves left.")


def heatmap_caption(label: str, m: MatrixDiff, rank_limit: int | None, lora_rank: int | None) -> str:
    """How low-rank the update in the heatmap is, from its spectrum: `rank_limit` is the shown run's
    own LoRA rank (None: no limit, as for full fine-tuning or IA3), `lora_rank` the page's LoRA rank."""
    energy = f"{m.energy_rank_90} of its {min(m.shape)} singular directions hold 90% of its energy"
    if rank_limit is not None:
        return (f"A LoRA update B @ A has rank at most r = {rank_limit}: all its rows are mixes of the same "
                f"{rank_limit} patterns, and so are its columns. In {label}'s update of this matrix, "
                f"{energy}.")
    if lora_rank is None:
        return f"{label}'s update has no rank limit; in this matrix {energy}."
    if m.held_by_rank(lora_rank):
        return (f"{label}'s update has no rank limit, yet in this matrix {energy}: a rank-{lora_rank} update "
                f"like LoRA's could hold that much, and its rows are close to mixes of {m.energy_rank_90} "
                "patterns.")
    return (f"{label}'s update has no rank limit; in this matrix {energy}, more than a rank-{lora_rank} "
            f"update like LoRA's can hold: its rows are not close to mixes of {lora_rank} patterns.")


def truth_sentence(probes: Sequence[tuple[str, str, str | None, str]], after_label: str | None) -> str:
    """(prompt, top token before, top token after or None, taught target) per probe, markdown-escaped
    by the caller: what the base and a tuned copy predict, next to what was taught."""
    parts = []
    for prompt, before, after, target in probes:
        moved = f", →{after} after {after_label}" if after is not None and after_label else ""
        parts.append(f"*{prompt}* →{before} before{moved} (taught:{target})")
    return "The generator knows the truth: " + "; ".join(parts) + "."
