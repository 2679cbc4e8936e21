"""How hooks reach a forward pass without leaking into anyone else's.

A cached model is shared by every browser session, and Streamlit runs each session's script in its
own thread. So hooks are never attached to the model's modules per request. Instead, the model has
permanent, do-nothing-by-default PyTorch hooks at every hook point, and each of them asks one
`contextvars.ContextVar` "is a run active here, and what does it want?". A ContextVar has one value
per thread (and per asyncio task), so a steering hook set in one session's thread is invisible to a
clean forward pass running at the same moment in another thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch

HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]


@dataclass(frozen=True)
class HookPoint:
    """What a hook function is told about where it runs (TransformerLens passes `hook` likewise).

    pos_offset is the sequence position of act[:, 0]: 0 for a plain forward pass, the number of
    tokens already in the KV cache during generation, so a hook can act "from position p on".
    """

    name: str
    layer: int | None
    pos_offset: int = 0

    def positions(self, n_pos: int) -> torch.Tensor:
        """Absolute positions of the n_pos entries along this activation's pos axis."""
        return torch.arange(self.pos_offset, self.pos_offset + n_pos)


@dataclass
class RunState:
    """Everything one active run (in one thread) wants from the hook points."""

    hooks: dict[str, list[HookFn]] = field(default_factory=dict)
    cache: dict[str, torch.Tensor] | None = None
    cache_names: frozenset[str] = frozenset()
    pos_offset: int = 0
    resid_pre: dict[int, torch.Tensor] = field(default_factory=dict)  # for writing resid_mid
    stop_at_layer: int | None = None  # end the forward pass when block L is about to run

    def __post_init__(self):
        # Every name this run touches: a hook point outside it can skip all work (and the attention
        # of a layer with none of its names can use the fused kernel, core.models.hooked_attention).
        cached = self.cache_names if self.cache is not None else frozenset()
        self.active: frozenset[str] = frozenset(self.hooks) | cached

    def wants(self, name: str) -> bool:
        return name in self.active

    def wants_any(self, names: frozenset[str]) -> bool:
        return not self.active.isdisjoint(names)

    def with_hooks(self, extra: Iterable[tuple[str, HookFn]]) -> RunState:
        """A copy with more hooks appended (inner `with lm.hooks(...)` blocks stack)."""
        hooks = {k: list(v) for k, v in self.hooks.items()}
        for name, fn in extra:
            hooks.setdefault(name, []).append(fn)
        return RunState(hooks, self.cache, self.cache_names, self.pos_offset)


class StopForward(Exception):
    """Raised at blocks.L.hook_resid_pre when a run only needs the layers before L."""


def apply_in(run: RunState, name: str, layer: int | None, act: torch.Tensor) -> torch.Tensor:
    """Run this point's hook functions on act (in order), cache the result, return it."""
    if name not in run.active:
        return act
    fns = run.hooks.get(name)
    if fns:
        point = HookPoint(name, layer, run.pos_offset)
        for fn in fns:
            out = fn(act, point)
            if out is not None:
                if out.shape != act.shape:
                    raise ValueError(
                        f"Hook on {name} returned shape {tuple(out.shape)}, "
                        f"expected {tuple(act.shape)}"
                    )
                act = out
    if run.cache is not None and name in run.cache_names:
        run.cache[name] = act.detach()
    return act


class Dispatcher:
    """One per model: owns its ContextVar and applies hooks and caching at a named point."""

    def __init__(self, label: str):
        self.state: ContextVar[RunState | None] = ContextVar(f"lab_hooks_{label}", default=None)

    def current(self) -> RunState | None:
        return self.state.get()

    def apply(self, name: str, layer: int | None, act: torch.Tensor) -> torch.Tensor:
        """apply_in() for this thread's run, if there is one."""
        run = self.state.get()
        return act if run is None else apply_in(run, name, layer, act)
