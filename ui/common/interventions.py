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

Steering vectors and head ablations are activation writes as data (core.models.backend.Write: "add
this vector at that hook point", "set head h's z to this"), so they apply the same way to a local
HookedLM and to a remote model on NDIF. A neuron ablation is a Python function (it sets one entry of
the last axis, which a Write cannot say); a remote model cannot run those, so it skips them and the
note says so. A page that runs its own intervention on top of the active ones (the Steering page
with its own push switched on for other pages) passes `exclude=(its name,)`, so it is never applied
twice.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
import torch

from core.models import act_name
from core.models.backend import Write, is_remote
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

    def writes(self) -> list[Write] | None:
        """The intervention as activation writes (data a remote model can run), or None when it
        can only be a Python function (then it runs on local models only)."""
        return None

    def hooks(self) -> list[tuple[str, object]]:
        """[(hook_name, fn)] for lm.hooks(...): its writes if it has them, else its function."""
        writes = self.writes()
        if writes is None:
            return [(self.hook_name, self.hook())]
        return [(w.name, w) for w in writes]

    def describe(self) -> str:
        raise NotImplementedError

    def key(self) -> tuple:
        """What a cache must see of it (hashable)."""
        return (type(self).__name__, self.name, self.model_spec, self.hook_name)


@dataclass(frozen=True, eq=False)
class Steering(Intervention):
    """Add coefficient * vector at a residual-stream hook point, at every position from start_pos on."""

    vector: np.ndarray = field(default_factory=lambda: np.zeros(0))  # [d_model]
    coefficient: float = 0.0
    start_pos: int = 0

    def push(self) -> torch.Tensor:
        """coefficient * vector [d_model]: what is added (zeros at coefficient 0: nothing changes)."""
        return torch.as_tensor(np.asarray(self.vector, dtype=np.float32)) * float(self.coefficient)

    def writes(self) -> list[Write]:
        return [Write(self.hook_name, self.push(), mode="add", start_pos=int(self.start_pos))]

    def hook(self):
        return self.writes()[0]

    def describe(self) -> str:
        where = "" if not self.start_pos else f" from position {self.start_pos} on"
        return (f"steering vector **{self.name}** x {self.coefficient:+g} added at "
                f"{hook_label(self.hook_name)}{where}")

    def key(self) -> tuple:
        return (*super().key(), float(self.coefficient), int(self.start_pos),
                np.asarray(self.vector, dtype=np.float32).tobytes())


@dataclass(frozen=True, eq=False)
class HeadAblation(Intervention):
    """Replace the outputs (z) of some heads of one layer: with 0 (zero ablation), or, when `values`
    gives one [d_head] vector per head (in the order of `heads`), with that vector at every position
    (mean ablation: the head's mean output over some prompts, as the Patching page measures it)."""

    layer: int = 0
    heads: tuple[int, ...] = ()
    values: tuple[np.ndarray, ...] | None = None  # per head [d_head], or None: zeros

    def __post_init__(self):
        if not self.hook_name:
            object.__setattr__(self, "hook_name", act_name("z", self.layer))
        if self.values is not None:
            values = tuple(np.asarray(v, dtype=np.float32).reshape(-1) for v in self.values)
            if len(values) != len(self.heads):
                raise ValueError(f"{len(values)} replacement values for {len(self.heads)} heads")
            object.__setattr__(self, "values", values)

    @property
    def mode(self) -> str:
        return "zero" if self.values is None else "mean"

    def writes(self) -> list[Write]:
        """One write per head: z[:, :, head] = 0 (or its value) at every position."""
        out = []
        for i, h in enumerate(self.heads):
            value = torch.zeros(()) if self.values is None else torch.as_tensor(self.values[i])  # [d_head]
            out.append(Write(self.hook_name, value, mode="set", head=int(h)))
        return out

    def hook(self):
        writes = self.writes()

        def fn(act, hook):  # act [batch, pos, head, d_head]
            for w in writes:
                act = w(act, hook)
            return act
        return fn

    def describe(self) -> str:
        names = ", ".join(f"{self.layer}.{h}" for h in self.heads)
        how = "zero-ablated" if self.values is None else "mean-ablated (set to their mean output)"
        return f"head{'s' * (len(self.heads) != 1)} **{names}** {how}"

    def key(self) -> tuple:
        values = () if self.values is None else tuple(v.tobytes() for v in self.values)
        return (*super().key(), self.layer, tuple(self.heads), values)


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


def runs_on(iv: Intervention, lm) -> bool:
    """Whether lm can run iv: every model runs writes; a Python function runs on local models only."""
    return not is_remote(lm) or iv.writes() is not None


def _switched_on(lm, store, exclude: Iterable[str]) -> list[Intervention]:
    names, skip = set(lm.hook_names()), set(exclude)
    return [iv for iv in _store(store).values()
            if iv.model_spec == lm.spec and iv.hook_name in names and iv.name not in skip]


def active(lm, store: MutableMapping | None = None, *, exclude: Iterable[str] = ()) -> list[Intervention]:
    """The interventions switched on for this model (its spec), that name a hook point it has and
    that it can run (see runs_on); those named in `exclude` are left out."""
    return [iv for iv in _switched_on(lm, store, exclude) if runs_on(iv, lm)]


def active_hooks(lm, store: MutableMapping | None = None, *, exclude: Iterable[str] = ()
                 ) -> list[tuple[str, object]]:
    """[(hook_name, fn)] for `with lm.hooks(...)`: the active interventions of the current model
    (writes where an intervention has them: core.models.backend.Write is also a hook function)."""
    return [pair for iv in active(lm, store, exclude=exclude) for pair in iv.hooks()]


def signature(lm, store: MutableMapping | None = None, *, exclude: Iterable[str] = ()) -> tuple:
    """A hashable summary of the active interventions, for cache keys (empty tuple: none)."""
    return tuple(sorted(iv.key() for iv in active(lm, store, exclude=exclude)))


def show_active(lm, *, key: str = "iv", exclude: Iterable[str] = ()) -> list[Intervention]:
    """The visible note on a page that applies interventions: what is on, each with a switch-off
    (and, on a remote model, the ones it cannot run, with the reason)."""
    on = active(lm, exclude=exclude)
    skipped = [iv for iv in _switched_on(lm, None, exclude) if not runs_on(iv, lm)]
    if not on and not skipped:
        return on
    with st.container(border=True):
        if on:
            st.markdown(f":material/tune: **{len(on)} intervention{'s' * (len(on) != 1)} switched on**: "
                        "this page shows the model *with* them.")
        for i, iv in enumerate(on):
            left, right = st.columns([5, 1], vertical_alignment="center")
            left.markdown(f"- {iv.describe()} (from the {iv.source or 'another'} page)")
            right.button("Switch off", key=f"{key}_off_{i}", on_click=switch_off, args=(iv.name,),
                         type="tertiary", icon=":material/close:")
        for iv in skipped:
            st.caption(f":material/cloud_off: Not applied here: {iv.describe()}. It is a Python function, "
                       "and a remote model runs only activation writes sent as data.")
    return on
