"""One way to cache a computation on a model: `@cache_on_model(...)` keys HookedLM arguments on
their spec.

A model cannot be hashed by value (hundreds of MB of weights), but its spec names it exactly: the
bundled model is "bundled", a hub model its id, and every private copy (a tuned model, a loaded
adapter) gets a spec of its own (HookedLM.copy, core.models.hooked_lm.derived_spec). So

    @cache_on_model(max_entries=8, show_spinner=False)
    def head_table(lm: HookedLM, layer: int) -> np.ndarray: ...

caches per (model, layer) with no `_lm, spec` pair at the call sites. Everything else about
st.cache_data is unchanged: arguments are hashed by value, results are pickled copies, so a caller
may change what it gets without touching the cache.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.models import HookedLM


def model_key(lm: HookedLM) -> str:
    """What a cached call sees of a model: its spec (unique per weights, see the module docstring)."""
    return lm.spec


def cache_on_model(func: Callable | None = None, **cache_kwargs):
    """st.cache_data that hashes HookedLM arguments by spec. Use bare or with st.cache_data's kwargs."""
    hash_funcs = {HookedLM: model_key, **cache_kwargs.pop("hash_funcs", {})}
    decorator = st.cache_data(hash_funcs=hash_funcs, **cache_kwargs)
    return decorator(func) if func is not None else decorator


def resource_on_model(func: Callable | None = None, **cache_kwargs):
    """st.cache_resource keyed on a HookedLM's spec: for big read-only results (activations, trained
    lenses) that every rerun and session shares instead of receiving a pickled copy. The caller must
    never change what it gets."""
    hash_funcs = {HookedLM: model_key, **cache_kwargs.pop("hash_funcs", {})}
    decorator = st.cache_resource(hash_funcs=hash_funcs, **cache_kwargs)
    return decorator(func) if func is not None else decorator
