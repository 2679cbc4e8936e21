"""Interventions a learner switched on in this session, applied by the pages that read the model.

A steering vector from the Steering page, a knocked-out neuron from the Neurons page, ablated heads:
once switched on, pages that respect interventions run the model under them and say so. The
registry holds plain data (hook name, vector, coefficient, ...) per session; hook functions are built
when asked, for the current model only:

    from ui.common.interventions import active_hooks, show_active
    show_active(lm)                               # the visible note (and a switch-off button each)
    with lm.hooks(active_hooks(lm)):              # nothing, if none is on for this model
        logits = lm(tokens)

    switch_on(Steering(name="sentiment, layer 2", model_spec=lm.spec, hook_name=sv.hook_name,
                       vector=sv.vector.numpy(), coefficient=4.0))
    switch_off("sentiment, layer 2")

An intervention belongs to the model it was made on (its spec): one made on another model, or naming
a hook point this model lacks, is never applied. A steering coefficient of 0 changes nothing.
Cached results must key on `signature(lm)` so that switching one on or off recomputes them.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
import torch

from core.models import act_name
from core.models.hook_names import hook_label

KEY = "interventions"  # st.session_state[KEY]: {name: Intervention}


@dataclass(frozen=True)
class Intervention:
    """Base: one named change to the forward pass of one model, at one hook point."""

    name: str  # unique in the session, shown to the learner
    model_spec: str  # lm.spec of the model it was made on
    hook_name: str = field(default="")
    source: str = ""  # the page that switched it on, e.g. "steering"

    def hook(self):
        """fn(act, hook) -> new act, or None to leave it unchanged."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def key(self) -> tuple:
        """What a cache must see of it (hashable)."""
        return (type(self).__name__, self.name, self.model_spec, self.hook_name)


@dataclass(frozen=True, eq=False)
class Steering(Intervention):
    """Add coefficient * vector at every position of a residual-stream hook point."""

    vector: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [d_model]
    coefficient: float = 0.0

    def hook(self):
        if self.coefficient == 0:
            return lambda act, hook: None  # exactly the unsteered model
        push = torch.as_tensor(np.asarray(self.vector, dtype=np.float32)) * float(self.coefficient)

        def fn(act, hook):
            return act + push.to(act.dtype)
        return fn

    def describe(self) -> str:
        return (f"steering vector **{self.name}** x {self.coefficient:+g} added at "
                f"{hook_label(self.hook_name)}")

    def key(self) -> tuple:
        return (*super().key(), float(self.coefficient), np.asarray(self.vector, dtype=np.float32).tobytes())


@dataclass(frozen=True)
class HeadAblation(Intervention):
    """Zero the outputs (z) of some heads of one layer."""

    layer: int = 0
    heads: tuple[int, ...] = ()

    def __post_init__(self):
        if not self.hook_name:
            object.__setattr__(self, "hook_name", act_name("z", self.layer))

    def hook(self):
        heads = list(self.heads)

        def fn(act, hook):  # act [batch, pos, head, d_head]
            out = act.clone()
            out[:, :, heads] = 0
            return out
        return fn

    def describe(self) -> str:
        names = ", ".join(f"{self.layer}.{h}" for h in self.heads)
        return f"head{'s' * (len(self.heads) != 1)} **{names}** zero-ablated"

    def key(self) -> tuple:
        return (*super().key(), self.layer, tuple(self.heads))


@dataclass(frozen=True)
class NeuronAblation(Intervention):
    """Set one MLP neuron's activation (after the nonlinearity) to a fixed value: 0, or its mean."""

    layer: int = 0
    neuron: int = 0
    value: float = 0.0
    mode: str = "zero"  # "zero" or "mean"

    def __post_init__(self):
        if not self.hook_name:
            object.__setattr__(self, "hook_name", act_name("post", self.layer))

    def hook(self):
        n, value = self.neuron, float(self.value)

        def fn(act, hook):  # act [batch, pos, d_mlp]
            out = act.clone()
            out[..., n] = value
            return out
        return fn

    def describe(self) -> str:
        how = "set to 0" if self.mode == "zero" else f"set to its mean ({self.value:.3g})"
        return f"neuron **L{self.layer} N{self.neuron}** {how}"

    def key(self) -> tuple:
        return (*super().key(), self.layer, self.neuron, float(self.value), self.mode)


# -- the registry ------------------------------------------------------------------------------------
def _store(store: MutableMapping | None) -> dict:
    if store is None:
        store = st.session_state
    return store.setdefault(KEY, {})


def switch_on(intervention: Intervention, store: MutableMapping | None = None) -> None:
    """Switch an intervention on (replaces one with the same name)."""
    _store(store)[intervention.name] = intervention


def switch_off(name: str, store: MutableMapping | None = None) -> None:
    _store(store).pop(name, None)


def is_on(name: str, store: MutableMapping | None = None) -> bool:
    return name in _store(store)


def active(lm, store: MutableMapping | None = None) -> list[Intervention]:
    """The interventions switched on for this model (its spec), that name a hook point it has."""
    names = set(lm.hook_names())
    return [iv for iv in _store(store).values() if iv.model_spec == lm.spec and iv.hook_name in names]


def active_hooks(lm, store: MutableMapping | None = None) -> list[tuple[str, object]]:
    """[(hook_name, fn)] for `with lm.hooks(...)`: the active interventions of the current model."""
    return [(iv.hook_name, iv.hook()) for iv in active(lm, store)]


def signature(lm, store: MutableMapping | None = None) -> tuple:
    """A hashable summary of the active interventions, for cache keys (empty tuple: none)."""
    return tuple(sorted(iv.key() for iv in active(lm, store)))


def show_active(lm, *, key: str = "iv") -> list[Intervention]:
    """The visible note on a page that applies interventions: what is on, each with a switch-off."""
    on = active(lm)
    if not on:
        return on
    with st.container(border=True):
        st.markdown(f":material/tune: **{len(on)} intervention{'s' * (len(on) != 1)} switched on**: "
                    "this page shows the model *with* them.")
        for i, iv in enumerate(on):
            left, right = st.columns([5, 1], vertical_alignment="center")
            left.markdown(f"- {iv.describe()} (from the {iv.source or 'another'} page)")
            right.button("Switch off", key=f"{key}_off_{i}", on_click=switch_off, args=(iv.name,),
                         type="tertiary", icon=":material/close:")
    return on
