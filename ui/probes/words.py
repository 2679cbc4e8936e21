"""The probes page's sentences about a result, worded from the verdicts of
core.interp.probes.verdicts (no st.* here: each function returns markdown)."""

from __future__ import annotations

from core.interp.probes.causal import Behaviour
from core.interp.probes.probe import ProbeReport
from core.interp.probes.verdicts import (
    AS_LEARNABLE,
    SCORE_MOVES,
    UNCHANGED,
    CausalVerdict,
    Readability,
    Removal,
    ScoreTrend,
)
from core.models.hook_names import layer_words  # "the embeddings" or "layer 2"; views call words.layer_words


def readable_sentence(r: ProbeReport, v: Readability) -> str:
    """Where the property becomes readable, in words (with the control and selectivity there)."""
    if v.first is None:
        return (f"No layer reaches {v.threshold:.2f} held-out {r.metric}; the best is "
                f"**{layer_words(r.layers[v.best])}** with {v.score:.2f}.")
    before = (f" ({layer_words(r.layers[v.first - 1])}: {v.before:.2f})" if v.before is not None else "")
    found = (f"It becomes readable at **{layer_words(r.layers[v.first])}**: held-out {r.metric} "
             f"{v.score:.2f}{before}, control {v.control:.2f}, selectivity {v.selectivity:.2f}.")
    if v.memorisable:
        found += (f" The control is high too ({v.control:.2f} against chance {r.chance:.2f}): this layer "
                  "also carries *which word* it was, so a probe could memorise; the held-out items "
                  "show whether it needs to.")
    return found


def control_sentence(r: ProbeReport, v: Readability) -> str:
    """Is the control task (a random label per word type) as learnable as the real labels, at the
    layer the readability verdict names?"""
    where = layer_words(r.layers[v.best if v.first is None else v.first])
    if v.as_learnable is None:
        return f"At {where} there is no control score (the control task drew one label for every word type)."
    scores = (f"the control task (each word type gets a random label) scores {v.control:.2f} against "
              f"{v.seen:.2f} on seen items (selectivity {v.selectivity:.2f})")
    if v.as_learnable:
        return (f"At {where}, {scores}: it is just as learnable (selectivity under {AS_LEARNABLE:g}), so "
                "what the probe reads there is which word it was.")
    return (f"At {where}, {scores}: the real labels are more learnable than random ones (selectivity "
            f"{AS_LEARNABLE:g} or more), so the probe reads more than which word it was.")


def trend_sentence(r: ProbeReport, t: ScoreTrend) -> str:
    """How the held-out score moves from the first layer probed to the last."""
    a, b = layer_words(r.layers[t.first]), layer_words(r.layers[t.last])
    if t.trend == "unmeasured":
        return f"The held-out {r.metric} could not be measured at {a} and {b}."
    moved = {"falls": "falls", "rises": "rises",
             "holds": f"stays within {SCORE_MOVES:g}"}[t.trend]
    then = {"falls": "later layers keep less of it in a linearly readable form",
            "rises": "later layers make it more linearly readable",
            "holds": "the layers keep it about as linearly readable"}[t.trend]
    return f"The held-out {r.metric} {moved} from {t.start:.2f} at {a} to {t.end:.2f} at {b}: {then}."


def _change(m: Removal) -> str:
    """ "10.02 → 4.10 (59% of the effect gone)", or "8.12 → 8.13 (unchanged: under 5% either way)"."""
    moved = f"{m.clean:.2f} → {m.after:.2f}"
    if m.change == "weakened":
        return f"{moved} ({min(m.share_gone, 9.99):.0%} of the effect gone)"
    if m.change == "strengthened":
        return f"{moved} (the effect grew by {-m.share_gone:.0%})"
    return f"{moved} (unchanged: less than {UNCHANGED:.0%} either way)"


def causal_sentence(v: CausalVerdict, behaviour: Behaviour, layer: int, n_removed: int) -> str:
    """What removing each direction did, as a list."""
    parts = [f"- **{m.what}**: {_change(m)}; the model's choice flips on {m.flipped:.0%} of prompts"
             for m in v.removals]
    return (f"With nothing removed, at {layer_words(layer)} the model prefers {behaviour.right_side} on "
            f"{v.clean_right:.0%} of prompts (mean score {v.best.clean:.2f}). Removing {n_removed} "
            "direction(s):\n" + "\n".join(parts))


def causal_summary(v: CausalVerdict, behaviour: Behaviour, layer: int) -> str:
    """The verdict of the causal check at one layer, in two sentences."""
    where = layer_words(layer)
    if v.use == "no behaviour":
        return (f"With nothing removed, the model prefers {behaviour.right_side} on only "
                f"{v.clean_right:.0%} of prompts (mean score {v.best.clean:.2f}): there is too little "
                f"behaviour here to take away, so this check says nothing about {where}.")
    b, rnd, o = v.best, v.random, v.other
    head = (f"At {where}, removing the **{b.what}** flips the model's choice on {b.flipped:.0%} of "
            f"prompts (score {b.clean:.2f} → {b.after:.2f}), against {rnd.flipped:.0%} for a random "
            f"direction" + (f" and {o.flipped:.0%} for the {o.what}" if o is not b else "") + "; ")
    if v.use == "chooses":
        return head + "so the model **uses** this direction to choose."
    if v.use == "contributes":
        return head + (f"so the model **uses** this direction, though not alone: {b.share_gone:.0%} of "
                       f"the effect goes with it (a random one: {rnd.clean:.2f} → {rnd.after:.2f}), but "
                       "the rest, carried by other directions, still makes the right choice.")
    return head + ("so the model does **not** rely on this direction alone: the information is "
                   "readable here but the behaviour reads it elsewhere (another direction or layer).")
