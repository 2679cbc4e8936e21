"""Words for the training page: every sentence about a run is built from its verdicts
(core.interp.training.phase and .trap), never written in advance."""

from __future__ import annotations

from core.interp.training.phase import (
    ACCURACY_REACHED,
    GAP_CLOSED,
    GAP_OPEN,
    GROK_DELAY_FACTOR,
    INDUCTION_FORMED,
    PREVIOUS_FORMED,
    SHARP_RISE,
    SHARP_SHARE,
    GrokVerdict,
    InductionVerdict,
)
from core.interp.training.trap import COPY_SOLVED, USES_CONTEXT_NATS, CopyMechanism


def _head(h) -> str:
    return f"head {h[0]}.{h[1]}"


def phase_marks(induction: InductionVerdict | None, grok: GrokVerdict | None) -> list[tuple[int, str]]:
    """(step, label) rules for the charts: where the jump happened."""
    marks = []
    if induction is not None and induction.formed_step is not None:
        marks.append((induction.formed_step, f"an induction score passes {INDUCTION_FORMED:g}"))
    if grok is not None and grok.generalised_step is not None:
        marks.append((grok.generalised_step, f"test accuracy passes {ACCURACY_REACHED:.0%}"))
    return marks


def induction_notes(v: InductionVerdict) -> list[str]:
    """What to notice about induction heads in this run."""
    notes = []
    if v.formed:
        head = _head(v.head)
        how = ("in one jump" if v.kind == "formed_sharply"
               else f"gradually (no stretch of a tenth of the run carried {SHARP_SHARE:.0%} of the "
                    f"score's rise and {SHARP_RISE:g} or more)")
        notes.append(f"**An induction head formed: a head's induction score first passed "
                     f"{INDUCTION_FORMED:g} at step {v.formed_step:,}**, {how}. The best now, {head}, puts "
                     f"{v.head[2]:.0%} of its attention on the token after the earlier copy.")
        if v.jump is not None:
            icl = ""
            if v.icl_before is not None and v.icl_after is not None:
                icl = (f"; in the same interval the in-context-learning score went from {v.icl_before:+.2f} "
                       f"to {v.icl_after:+.2f} nats (negative: the repeated half is predicted better than "
                       "the random first half)")
            notes.append("The steepest rise of the best induction score was between steps "
                         f"{v.jump.step_before:,} and {v.jump.step:,}: from {v.jump.before:.2f} to "
                         f"{v.jump.after:.2f}{icl}.")
    else:
        best = f" (best: {_head(v.head)} at {v.head[2]:.2f})" if v.head else ""
        notes.append(f"**No induction head formed in {v.last_step:,} steps**: no head reached an induction "
                     f"score of {INDUCTION_FORMED:g}{best}.")
    if v.previous_step is not None:
        order = ""
        if v.formed_step is not None:
            if v.previous_step < v.formed_step:
                order = " before the induction head"
            elif v.previous_step == v.formed_step:
                order = " in the same logged interval as the induction head"
            else:
                order = " after the induction head"
        best_now = f"the best now: {_head(v.previous_head)} at {v.previous_head[2]:.2f}"
        if v.formed_step is not None and v.previous_step > v.formed_step and v.previous_at_formed is not None:
            notes.append(f"A head's previous-token score passed {PREVIOUS_FORMED:g} only at step "
                         f"{v.previous_step:,}, after the induction head ({best_now}). When the induction "
                         f"head formed, the best previous-token score was {v.previous_at_formed:.2f}: it "
                         "read a previous-token signal spread over several heads, which sharpened later.")
        else:
            notes.append(f"A head's previous-token score first passed {PREVIOUS_FORMED:g} at step "
                         f"{v.previous_step:,}{order} ({best_now}): an induction head reads what a "
                         "previous-token head in an earlier layer wrote.")
    elif v.previous_head is not None:
        notes.append(f"No head became a previous-token head (best {_head(v.previous_head)} at "
                     f"{v.previous_head[2]:.2f}, under {PREVIOUS_FORMED:g}).")
    if v.n_layers == 1:
        notes.append("This model has one layer. The usual induction circuit needs two: a head that writes "
                     "each token's predecessor into its position, and a later head that matches on it.")
    return notes


def grok_notes(v: GrokVerdict) -> list[str]:
    """What to notice about memorising and generalising (modular addition)."""
    notes = []
    reached = f"{ACCURACY_REACHED:.0%}"
    if v.kind == "grokked":
        notes.append(f"**It grokked.** Training accuracy reached {reached} at step {v.memorised_step:,}, "
                     f"test accuracy only at step {v.generalised_step:,}: {v.delay_factor:.1f} times as late "
                     f"(grokking here means at least {GROK_DELAY_FACTOR:g} times).")
    elif v.kind == "generalised_with_it":
        notes.append("**It generalised almost as soon as it memorised**: training accuracy reached "
                     f"{reached} at step {v.memorised_step:,}, test accuracy at step {v.generalised_step:,} "
                     f"(less than {GROK_DELAY_FACTOR:g} times as late, so this is not called grokking).")
    elif v.kind == "memorised_only":
        notes.append(f"**It memorised but did not generalise** in {v.last_step:,} steps: training accuracy "
                     f"reached {reached} at step {v.memorised_step:,}; test accuracy never did.")
    else:
        notes.append("**It has not learned the training pairs yet**: training accuracy stayed under "
                     f"{reached} for {v.last_step:,} steps.")
    if v.gap_closed:
        notes.append(f"The train/test gap opened to {v.max_gap:.0%} and closed to {v.final_gap:.0%} (its "
                     "mean over the run's last tenth).")
    elif v.max_gap >= GAP_OPEN:
        notes.append(f"The train/test gap opened to {v.max_gap:.0%} and is still {v.final_gap:.0%} over the "
                     f"run's last tenth (closed means {GAP_CLOSED:.0%} or less).")
    if v.jump is not None and v.jump.rise > 0:
        notes.append(f"Test accuracy rose most between steps {v.jump.step_before:,} and {v.jump.step:,}: "
                     f"from {v.jump.before:.0%} to {v.jump.after:.0%}.")
    if v.fourier_start is not None and v.fourier_end is not None:
        direction = "rose" if v.fourier_end > v.fourier_start else "did not rise"
        notes.append(f"The embedding's Fourier sparsity {direction}: from {v.fourier_start:.2f} to "
                     f"{v.fourier_end:.2f} (the share of its power in its five strongest frequencies).")
    return notes


def mechanism_notes(m: CopyMechanism) -> list[str]:
    """Position or content: the trap's explanation, from the run's own numbers."""
    share = f"{m.copy_share_of_chance:.0%} of chance ({m.copy_loss:.2f} vs {m.chance:.2f} nats)"
    probe = (f"on repeats at another distance the repeated half costs {m.repeated_half_loss:.2f} nats "
             f"against {m.chance:.2f} for a uniform guess")
    if m.kind == "by_position":
        wrong = m.first_half_loss > m.chance + USES_CONTEXT_NATS
        first = (f" (and the random first half costs {m.first_half_loss:.2f}: the model expects a copy at "
                 "its training distance and is confidently wrong)" if wrong else "")
        return [f"**Solved by position, not by content.** At the training distance the copied tokens cost "
                f"{share}; but {probe}{first}. A model that matched contents would predict that repeat too "
                f"(at least {USES_CONTEXT_NATS:g} nats below chance). It learned *where* the copy is, not "
                "*what* to look for: a head that always looks the same number of places back."]
    if m.kind == "by_content":
        return [f"**Solved by content.** The copied tokens cost {share}, and {probe}: the model finds the "
                "earlier copy whatever its distance, as an induction head does."]
    return [f"**The copies are not predicted yet**: they cost {share} (solved means at most "
            f"{COPY_SOLVED:.0%} of chance)."]


def _heads_at_least(scores: list[list[float]], threshold: float) -> list[tuple[int, int]]:
    return [(layer, head) for layer, row in enumerate(scores) for head, v in enumerate(row) if v >= threshold]


def _head_list(heads: list[tuple[int, int]]) -> str:
    return ", ".join(f"{layer}.{head}" for layer, head in heads) or "none"


def replay_end_words(meta: dict, last_scores: dict | None) -> str:
    """How the replay's last step compares with the committed checkpoint every other page shows,
    from the numbers the timeline recorded (the same scorer, the same data)."""
    diff = meta.get("max_abs_diff_to_committed_checkpoint")
    committed = (meta.get("committed_end") or {}).get("scores")
    if diff is None or committed is None or not last_scores:
        return ""
    if diff == 0:
        return "The retrain ended on exactly the committed weights: its last step is what the pages show."
    parts = []
    same_layers, any_heads = True, False
    for kind, words, threshold in (("previous_token", "previous-token", PREVIOUS_FORMED),
                                   ("induction", "induction", INDUCTION_FORMED)):
        ours = _heads_at_least(last_scores[kind], threshold)
        theirs = _heads_at_least(committed[kind], threshold)
        same_layers &= {h[0] for h in ours} == {h[0] for h in theirs}
        any_heads |= bool(ours or theirs)
        parts.append(f"{words} heads (score {threshold:g} or more) {_head_list(ours)} here, "
                     f"{_head_list(theirs)} in the committed model")
    if not any_heads:
        verdict = "no such heads in either"
    elif same_layers:
        verdict = "the same layers, so the same circuit, though not always the same heads"
    else:
        verdict = "different layers: this retrain formed a different circuit"
    recipe = meta.get("recipe", {})
    why = ("products in bfloat16 round differently on another CPU, and "
           if recipe.get("bf16") else "floating-point sums round differently on another CPU, and ")
    return (f"This retrain did not end on the committed weights (they differ by up to {diff:.2f}): {why}"
            f"{recipe.get('steps', 0):,} steps carry the difference far. At the last step: "
            f"{'; '.join(parts)}: {verdict}. The other pages show the committed model.")
