"""What the Steering page shares with the other pages, both ways.

Out: "Keep this push on for the other pages" switches on the page's own push (its vector, layer,
coefficient and start position) as a session intervention (ui.common.interventions.Steering), so
the Residual, Attention and Patching pages run the model with it. The page remembers the name it
switched on: when the vector, layer or coefficient changes, the intervention is replaced; when the
toggle goes off (here, or with "Switch off" on another page), it is removed. The page itself leaves
its own push out of the interventions it runs under, so the push is never added twice.

In: a circuit sent from the Patching page ("ablate these heads") can be switched on here as mean
ablation of those heads (each head's output z set to its mean over the behaviour's prompts); then
this page, and every page that respects interventions, runs with those heads knocked out.
"""

from __future__ import annotations

import streamlit as st

from core.models.hook_names import layer_words
from ui.common import interventions as I
from ui.patching import handoff

KEEP_KEY = "steer_keep"  # the toggle (session only: a link cannot switch interventions on)
KEPT_KEY = "steer_kept_name"  # the name of the intervention the toggle switched on


def own_name() -> str:
    """The name of this page's push among the session's interventions ("" when none is kept)."""
    return st.session_state.get(KEPT_KEY, "")


def push_name(label: str, layer: int | None) -> str:
    """The push's name on every page: what it is and where it is added."""
    where = layer_words(layer) if layer is not None else "its own hook point"
    return f"Steering page: {label}, at {where}"


def keep_toggle(lm, sv, label: str, layer: int | None, coefficient: float, start_pos: int) -> None:
    """The toggle, kept in step with the registry (see the module docstring)."""
    kept = own_name()
    if kept and not I.is_on(kept):  # switched off on another page
        st.session_state[KEEP_KEY] = False
        st.session_state.pop(KEPT_KEY, None)
        kept = ""
    on = st.toggle("Keep this push on for the other pages", key=KEEP_KEY,
                   help="The Residual stream, Attention and Patching pages then run the model with this "
                        "vector added (this coefficient, layer and start position), and say so. Switch it "
                        "off here or on any of them.")
    if not on:
        if kept:
            I.switch_off(kept)
            st.session_state.pop(KEPT_KEY, None)
        return
    push = I.Steering(name=push_name(label, layer), model_spec=lm.spec, hook_name=sv.hook_name,
                      vector=sv.vector.detach().float().numpy(), coefficient=float(coefficient),
                      start_pos=int(start_pos), source="steering")
    if kept and kept != push.name:
        I.switch_off(kept)
    I.switch_on(push)  # replaces an older version of the same push
    st.session_state[KEPT_KEY] = push.name
    st.caption(f":material/tune: On for the other pages: {push.describe()}. This page leaves it out of "
               "what it runs under, so it is not added twice here.")


def _flip(ablation: handoff.HeadAblation, key: str) -> None:
    if st.session_state.get(key):
        handoff.switch_on_circuit(ablation)
    else:
        handoff.switch_off_circuit(ablation)


def received_circuits(lm) -> None:
    """Circuits sent from the Patching page for this model, each with a switch for mean ablation."""
    received = handoff.received_ablations(lm.spec)
    if not received:
        return
    with st.expander(f"Circuits from the Patching page ({len(received)})", icon=":material/hub:",
                     expanded=True):
        st.caption("Switch one on to mean-ablate its heads (each head's output set to its mean over the "
                   "behaviour's prompts) on this page and on every page that respects interventions: see "
                   "what the model writes, and what the push does, without that circuit.")
        for i, ablation in enumerate(received):
            key = f"steer_circuit_{i}"
            st.session_state[key] = handoff.circuit_is_on(ablation)
            heads = ", ".join(f"{a}.{b}" for a, b in ablation.heads)
            st.toggle(f"Mean-ablate heads {heads}", key=key, on_change=_flip, args=(ablation, key),
                      help=ablation.name)
