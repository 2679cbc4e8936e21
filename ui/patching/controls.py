"""The page's controls: which behaviour (or your own pair), and which direction to patch in."""

from __future__ import annotations

import streamlit as st

from core.interp.patching.sweeps import DIRECTIONS
from ui.common.page import show_problem

# Options are their own labels: a bound widget writes its label into the URL, so links stay readable.
BEHAVIOUR_LABELS = {"ioi": "IOI", "induction": "Induction", "facts": "Facts", "pronouns": "Pronouns",
                    "custom": "Your own pair"}
BEHAVIOUR_HELP = ("IOI: who gets the drink. Induction: copy what came next last time. Facts: capitals. "
                  "Pronouns: she or he after a name. Each comes as clean / corrupted prompt pairs of the "
                  "same length that differ in what decides the answer.")
DIRECTION_LABELS = {"denoise": "Denoising", "noise": "Noising"}
DIRECTION_WORDS = {
    "denoise": "Denoising (run the corrupted prompt, copy one activation in from the clean run) answers *is "
               "this activation enough?*: the share of the clean behaviour that restoring this one place "
               "brings back.",
    "noise": "Noising (run the clean prompt, copy one activation in from the corrupted run) answers *is this "
             "activation needed?*: the share of the clean behaviour that breaking this one place destroys.",
}
DEFAULT_PAIR = ("When Mary and John went to the store, John gave a drink to",
                "When Mary and John went to the store, Mary gave a drink to", " Mary", " John")


def key_of(labels: dict, label, default: str) -> str:
    """The key of a widget's label (a hostile link can leave a widget with a value it does not offer)."""
    return next((k for k, v in labels.items() if v == label), default)


def pick_behaviour(lm) -> tuple[str, tuple[str, str, str, str]]:
    """The behaviour and, for "custom", (clean, corrupted, right answer, wrong answer)."""
    default = BEHAVIOUR_LABELS["ioi" if lm.is_bundled else "induction"]
    labels = list(BEHAVIOUR_LABELS.values())
    if st.session_state.get("patch_behaviour") not in (None, *labels):
        st.session_state["patch_behaviour"] = default  # a value from an older version of the page
    label = st.selectbox("Behaviour", labels, index=labels.index(default), key="patch_behaviour",
                         bind="query-params", help=BEHAVIOUR_HELP)
    behaviour = key_of(BEHAVIOUR_LABELS, label, "ioi" if lm.is_bundled else "induction")
    custom = ("", "", "", "")
    if behaviour == "custom":
        left, right = st.columns(2)
        clean = left.text_input("Clean prompt", DEFAULT_PAIR[0], key="patch_clean", bind="query-params",
                                max_chars=400)
        corrupt = right.text_input("Corrupted prompt (same number of tokens)", DEFAULT_PAIR[1],
                                   key="patch_corrupt", bind="query-params", max_chars=400)
        answer = left.text_input("Right answer (for the clean prompt; mind the leading space)",
                                 DEFAULT_PAIR[2],
                                 key="patch_right", bind="query-params", max_chars=40)
        other = right.text_input("Wrong answer (what the corrupted prompt makes likely)", DEFAULT_PAIR[3],
                                 key="patch_wrong", bind="query-params", max_chars=40)
        custom = (clean, corrupt, answer, other)
        unknown = sorted({w for text in (clean, corrupt) for w in lm.unknown_words(text or "")})
        if unknown:
            show_problem("This model has never seen these words, so they become an unknown token: "
                         f"{', '.join(unknown[:8])}. Results for them mean little.")
    return behaviour, custom


def pick_direction() -> str:
    label = st.segmented_control("Direction", [DIRECTION_LABELS[d] for d in DIRECTIONS],
                                 default=DIRECTION_LABELS["denoise"], required=True, key="patch_direction",
                                 bind="query-params")
    direction = key_of(DIRECTION_LABELS, label, "denoise")
    st.caption(DIRECTION_WORDS[direction])
    return direction
